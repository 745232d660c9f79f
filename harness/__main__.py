from harness.run import main

raise SystemExit(main())
