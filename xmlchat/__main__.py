from xmlchat.cli import main

raise SystemExit(main())
