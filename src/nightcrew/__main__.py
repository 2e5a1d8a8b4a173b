from nightcrew.launch import main

main()
