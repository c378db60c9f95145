"""Run LocalStack's AWS-validated tests strictly against Rampart: every snapshot path is verified
(LocalStack's own skip_snapshot_verify exemptions are ignored), only tests recorded against AWS."""
import pytest
import localstack_snapshot.pytest.snapshot as snap

snap.is_aws = lambda: True  # verify every path: the skips are LocalStack's own deviations


def pytest_collection_modifyitems(config, items):
    keep, drop = [], []
    for item in items:
        names = {m.name for m in item.iter_markers()}
        if "aws_validated" in names and not names & {"aws_only_localstack", "only_localstack", "aws_needs_fixing", "aws_manual_setup_required"}:
            keep.append(item)
        else:
            drop.append(item)
    items[:] = keep
    config.hook.pytest_deselected(items=drop)
