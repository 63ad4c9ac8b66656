from openkvs.cli import main

main()
