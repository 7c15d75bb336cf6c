"""A workshop on one machine: JupyterHub with an account, a server and a database per learner.

`make hub` runs `autograder hub` (`autograder.commands.hub`), a thin shim over `run.run_hub`. The parts:

| module | one job |
| --- | --- |
| `settings.py` | what a hub is configured with (port, folders, exchange, culling), handed to JupyterHub |
| `participants.py` | the participant list: who may sign in, who is an instructor (admin) |
| `users.py` | one account on this machine per participant, private home |
| `provision.py` | the hub's PostgreSQL, and a confined role per learner with private lesson databases |
| `config.py` | the JupyterHub configuration (authenticator, spawner, pre-spawn hook, idle culler) |
| `interpreter.py` | a Python every learner's account can run, with the course venv's packages |
| `singleuser.py` | what a learner's server runs first (as the learner): workspace sync, credentials file |
| `instructors.py` | an instructor's server: the instructor view on the instructors' course folder, their group |
| `lockdown.py` | the course's sensitive paths out of learners' reach |
| `run.py` | checks, preparation and supervision of JupyterHub and the database |
"""
