from nocctl.cli import main

main()
