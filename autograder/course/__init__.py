"""The course's side of nbgrader: where lessons live, release and feedback preprocessors."""
