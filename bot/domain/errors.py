"""Errors the domain raises; every front end turns them into a message for the user."""


class DomainError(Exception):
    """A request the domain refuses. The message is written for the person who asked."""


class IncidentNotFound(DomainError):
    def __init__(self, ref: str) -> None:
        super().__init__(f"{ref} does not exist")


class InvalidTransition(DomainError):
    pass


class InvalidInput(DomainError):
    pass
