from nightcrew.cli import main

main()
