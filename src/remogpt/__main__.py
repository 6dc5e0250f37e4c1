from remogpt.cli import main

main()
