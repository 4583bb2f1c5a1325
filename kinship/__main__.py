from kinship.cli import main

main()
