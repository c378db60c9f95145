"""Secrets Manager: StopReplicationToReplica (promoting a cross-Region replica to a standalone
secret) and ListResourcePolicies."""

from __future__ import annotations

import json

import pytest

from support import REGION, allow, aws_error, policy, unique

OTHER = "us-west-2" if REGION != "us-west-2" else "us-east-2"


@pytest.fixture(scope="module")
def sm(server):
    return server.client("secretsmanager")


@pytest.fixture(scope="module")
def sm2(server):
    return server.client("secretsmanager", region=OTHER)


@pytest.fixture(scope="module")
def sm_raw(server):
    return server.client("secretsmanager", parameter_validation=False)


def test_stop_replication_promotes_the_replica(sm, sm2):
    name = unique("promote")
    created = sm.create_secret(Name=name, SecretString="v1", Description="d", Tags=[{"Key": "team", "Value": "a"}],
                               AddReplicaRegions=[{"Region": OTHER}])
    sm.put_secret_value(SecretId=name, SecretString="v2")
    replica = created["ARN"].replace(f":{REGION}:", f":{OTHER}:")
    assert sm2.stop_replication_to_replica(SecretId=replica)["ARN"] == replica
    # The promoted secret is standalone: no primary Region, its own values and versions.
    d = sm2.describe_secret(SecretId=name)
    assert d["ARN"] == replica and "PrimaryRegion" not in d
    assert d["Description"] == "d" and d["Tags"] == [{"Key": "team", "Value": "a"}]
    assert sm2.get_secret_value(SecretId=name)["SecretString"] == "v2"
    assert sm2.get_secret_value(SecretId=name, VersionStage="AWSPREVIOUS")["SecretString"] == "v1"
    # The primary no longer replicates to that Region.
    assert "ReplicationStatus" not in sm.describe_secret(SecretId=name)
    # Each one changes alone now.
    sm2.put_secret_value(SecretId=name, SecretString="replica-only")
    assert sm.get_secret_value(SecretId=name)["SecretString"] == "v2"
    sm.put_secret_value(SecretId=name, SecretString="primary-only")
    assert sm2.get_secret_value(SecretId=name)["SecretString"] == "replica-only"
    # Deleting the primary leaves the promoted secret.
    sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)
    assert sm2.get_secret_value(SecretId=name)["SecretString"] == "replica-only"
    sm2.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)


def test_stop_replication_errors(sm, sm2, sm_raw):
    name = unique("notreplica")
    sm.create_secret(Name=name, SecretString="x")
    with aws_error("InvalidRequestException", 400):
        sm.stop_replication_to_replica(SecretId=name)
    with aws_error("ResourceNotFoundException", 400):
        sm2.stop_replication_to_replica(SecretId=unique("missing"))
    with aws_error("ValidationException", 400):
        sm_raw.stop_replication_to_replica(SecretId="no spaces allowed")


def test_stop_replication_needs_permission(server, sm, make_user):
    name = unique("denied")
    arn = sm.create_secret(Name=name, SecretString="x", AddReplicaRegions=[{"Region": OTHER}])["ARN"]
    replica = arn.replace(f":{REGION}:", f":{OTHER}:")
    u = make_user(inline=[policy(allow("secretsmanager:DescribeSecret"))])
    with aws_error("AccessDeniedException", 400, match="secretsmanager:StopReplicationToReplica"):
        u.client("secretsmanager", region_name=OTHER).stop_replication_to_replica(SecretId=replica)
    sm.remove_regions_from_replication(SecretId=name, RemoveReplicaRegions=[OTHER])
    sm.delete_secret(SecretId=name, ForceDeleteWithoutRecovery=True)


def test_list_resource_policies(sm, sm_raw, account_id):
    name = unique("policies")
    sm.create_secret(Name=name, SecretString="x")
    assert sm.list_resource_policies(SecretId=name)["ResourcePolicies"] == []
    doc = policy({"Effect": "Allow", "Principal": {"AWS": f"arn:aws:iam::{account_id}:root"},
                  "Action": "secretsmanager:GetSecretValue", "Resource": "*"})
    sm.put_resource_policy(SecretId=name, ResourcePolicy=json.dumps(doc))
    got = sm.list_resource_policies(SecretId=name)
    assert got["ResourcePolicies"] == [{"PolicyName": "default"}] and "NextToken" not in got
    assert sm.list_resource_policies(SecretId=name, MaxResults=1)["ResourcePolicies"] == [{"PolicyName": "default"}]
    sm.delete_resource_policy(SecretId=name)
    assert sm.list_resource_policies(SecretId=name)["ResourcePolicies"] == []
    with aws_error("InvalidNextTokenException", 400):
        sm.list_resource_policies(SecretId=name, NextToken="bogus")
    with aws_error("ValidationException", 400, match="maxResults"):
        sm_raw.list_resource_policies(SecretId=name, MaxResults=101)
    with aws_error("ResourceNotFoundException", 400):
        sm.list_resource_policies(SecretId=unique("missing"))


def test_list_resource_policies_needs_permission(sm, make_user):
    name = unique("policies")
    sm.create_secret(Name=name, SecretString="x")
    u = make_user(inline=[policy(allow("secretsmanager:GetResourcePolicy"))])
    with aws_error("AccessDeniedException", 400, match="secretsmanager:ListResourcePolicies"):
        u.client("secretsmanager").list_resource_policies(SecretId=name)
