"""The one error type a user sees: what went wrong and what to do about it, on one line."""


class EarwigError(Exception):
    """A problem the user can fix. The CLI prints ``earwig: <problem> (<fix>)`` and exits 2."""

    def __init__(self, problem: str, fix: str = "") -> None:
        super().__init__(problem)
        self.problem = problem
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.problem} ({self.fix})" if self.fix else self.problem
