from watcher.commands.cli import main

raise SystemExit(main())
