from cartrial.cli import main

main()
