from earwig.cli import main
import sys
sys.exit(main())
