"""The worker: `baton worker start`, `Flow.serve()`, and the process that runs a deployment's flow.

Nothing is imported here: `python -m baton._worker` (a flow run's process) must start fast.

- `_worker.Worker`: claims runs from a pool's queues and runs each in a process.
- `_intake`: how many deliveries it takes, from which queue first.
- `_process`, `_forkserver`: the `process` infrastructure (fresh or pre-started interpreters).
- `_job`: what the worker hands the run's process, and what its exit code says back.
- `_child`, `_pull_steps`: inside the run's process (the flow comes from `baton._entrypoints`).
- `_relay`, `_output`: the run's reports and output, through the worker.
- `_templates`: job templates rendered with job variables.
- `_serve`: a deployment and a worker for it in one process.
"""
