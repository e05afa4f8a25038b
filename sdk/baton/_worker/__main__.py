"""`python -m baton._worker`: the process that runs one flow run for a worker."""

from baton._worker._child import main

main()
