"""The dashboard, ``nightcrew serve``: server-rendered pages over the read
models in ``views/``, live through Server-Sent Events fed from the projects'
stores, behind a token, Host/Origin checks and CSRF tokens (``security.py``).
The web server and its libraries load only when the dashboard starts."""
