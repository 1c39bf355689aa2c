"""A failure at any moment of ``up`` leaves nothing broken: the next ``up`` converges to a clean run's state.

Every mutating call of the ``network`` step is a fault point, and a sample spread over the rest of ``up``;
each fails once as an error and once as a response lost after the call took effect (see tests/faults.py).
The number of fault points tried is printed at the end of the test session.
"""

from __future__ import annotations

import pytest

import pointapp
from tests import faults

#: Mutating calls the network step makes in a clean ``up`` of the default prod spec (checked below).
NETWORK_CALLS = 62
#: Fault points spread evenly over the mutating calls of the other steps.
REST_SAMPLES = 16
MODES = {"error": False, "lost-response": True}


@pytest.fixture(scope="session")  # once per test process: the fault runs of a worker come in several stretches
def clean(quick_aws_like: str) -> faults.Clean:
    return faults.clean_run(quick_aws_like)


def test_the_fault_points_cover_the_network_step(clean: faults.Clean) -> None:
    assert len(clean.calls_of("network")) == NETWORK_CALLS, \
        f"the network step now makes {len(clean.calls_of('network'))} mutating calls: update NETWORK_CALLS"
    assert "-" not in {step for step, _ in clean.calls}, "a mutating call made outside any step's work"
    later = {step for step, _ in clean.calls if step != "network"}
    assert later >= {"endpoints", "registry", "database", "cache", "mail", "service", "delivery", "bastion"}
    assert len(clean.calls) - NETWORK_CALLS >= REST_SAMPLES
    # The NAT routes wait for the NAT gateway: they come after the first calls of the steps that follow.
    assert clean.calls_of("network")[-1] > NETWORK_CALLS


def test_the_census_reads_ec2_from_the_backend_as_the_api_lists_it(quick_aws_like: str, clean: faults.Clean) -> None:
    """The census counts EC2's resources from moto's backend (tests/faults.py): at every stage of a run,
    empty, half built by an up that lost a response, built, emptied by down, they are those the API lists."""
    def same(stage: str) -> int:
        read, listed = faults.census(quick_aws_like), faults.census(quick_aws_like, ec2_by_api=True)
        assert read == listed, f"{stage}: {faults.difference(read, listed)}"
        return sum(n for (kind, _), n in read.items() if kind in faults.EC2_KINDS)

    faults.reset(quick_aws_like)
    assert same("empty") == 0
    with faults.connect(quick_aws_like) as broken:
        faults.inject(broken, clean.calls_of("network")[40], lost=True)
        with pytest.raises(faults.InjectedFault):
            pointapp.up(broken)
    assert same("half built") > 0
    with faults.connect(quick_aws_like) as ctx:
        pointapp.up(ctx)
    built = same("built")
    with faults.connect(quick_aws_like) as ctx:
        pointapp.down(ctx)
    assert same("emptied") < built


def rest_point(clean: faults.Clean, sample: int) -> int:
    """The position of the sample-th of REST_SAMPLES points spread evenly over the other steps' calls."""
    rest = [i + 1 for i, (step, _) in enumerate(clean.calls) if step != "network"]
    return rest[(sample * (len(rest) - 1)) // (REST_SAMPLES - 1)]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("n", range(1, NETWORK_CALLS + 1))
def test_fault_in_the_network_step(quick_aws_like: str, clean: faults.Clean, n: int, mode: str) -> None:
    k = clean.calls_of("network")[n - 1]  # the n-th mutating call of the network step, wherever it falls
    hit = faults.fail_then_converge(quick_aws_like, clean, k, MODES[mode])
    assert hit == clean.calls[k - 1][1]


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("sample", range(REST_SAMPLES))
def test_fault_over_the_rest_of_up(quick_aws_like: str, clean: faults.Clean, sample: int, mode: str) -> None:
    k = rest_point(clean, sample)
    hit = faults.fail_then_converge(quick_aws_like, clean, k, MODES[mode])
    assert hit == clean.calls[k - 1][1], f"call {k} of step {clean.calls[k - 1][0]}"


#: Calls of ``up --parallel 4`` (the command's default) made where steps run side by side: the load
#: balancer's unit beside the database, the NAT route added from the service's thread, the data steps.
PARALLEL_POINTS = ("elbv2:CreateLoadBalancer", "elbv2:CreateListener#2", "ec2:CreateRoute#2", "rds:CreateDBInstance",
                   "elasticache:CreateReplicationGroup", "ecs:CreateService")


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("operation", PARALLEL_POINTS)
def test_fault_while_steps_run_side_by_side(quick_aws_like: str, clean: faults.Clean, operation: str, mode: str) -> None:
    hit = faults.fail_then_converge(quick_aws_like, clean, 0, MODES[mode], operation=operation, parallel=4)
    assert hit == operation.split("#")[0]
