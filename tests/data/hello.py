"""A flow the registrar tests deploy (tests/unit/test_deploy_spec.py, tests/integration)."""

from prefect import flow


@flow(name="hello-flow")
def hello(who: str = "world", times: int = 1) -> str:
    return who * times
