"""Deployments from the user's side: baton.yaml, parameter schemas from flow signatures, and
the requests `baton deploy` and `Flow.deploy()` send.

    config.py         baton.yaml, read and checked (errors name the deployment and field)
    schema.py         a flow's parameters as JSON Schema; deployment defaults checked
    entrypoint.py     load the flow of `path/file.py:function`; name the entrypoint of a flow
    deployer.py       build `DeploymentCreate`s and send them

Work pools' job templates are a shape of their own: `baton_schemas.job_templates`.
"""
