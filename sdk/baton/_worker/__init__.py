"""The worker: `baton worker start`, `Flow.serve()`, and the process that runs a deployment's flow.

Nothing is imported here: `python -m baton._worker` (a flow run's process) must start fast.

- `_worker.Worker`: claims runs from a pool's queues and runs each in a process.
- `_intake`: how many deliveries it takes, from which queue first.
- `_process`, `_forkserver`: the `process` infrastructure (fresh or pre-started interpreters).
- `_child`, `_pull_steps`, `_entrypoint`: inside the run's process.
- `_templates`: job templates rendered with job variables.
- `_serve`: a deployment and a worker for it in one process.
"""
