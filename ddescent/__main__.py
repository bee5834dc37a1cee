from ddescent.cli import main

main()
