"""AWS's rotation Lambda template as a plain function, shared by the webhook and command rotators
of test_secrets_rotation.py."""


def rotation_step(sm, event: dict, fail_step: str | None = None) -> None:
    """AWS's rotation Lambda template, step by step, through the Secrets Manager API."""
    arn, token, step = event["SecretId"], event["ClientRequestToken"], event["Step"]
    meta = sm.describe_secret(SecretId=arn)
    if not meta.get("RotationEnabled"):
        raise ValueError("rotation not enabled")
    versions = meta["VersionIdsToStages"]
    if token not in versions:
        raise ValueError("token has no stage")
    if "AWSCURRENT" in versions[token]:
        return
    if "AWSPENDING" not in versions[token]:
        raise ValueError("token is not AWSPENDING")
    if step == fail_step:
        raise RuntimeError(f"{step} failed on purpose")
    if step == "createSecret":
        sm.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")
        try:
            sm.get_secret_value(SecretId=arn, VersionId=token, VersionStage="AWSPENDING")
        except sm.exceptions.ResourceNotFoundException:
            pw = sm.get_random_password(ExcludeCharacters="/@\"'\\")["RandomPassword"]
            sm.put_secret_value(SecretId=arn, ClientRequestToken=token, SecretString=pw, VersionStages=["AWSPENDING"])
    elif step == "finishSecret":
        current = next(v for v, s in versions.items() if "AWSCURRENT" in s)
        sm.update_secret_version_stage(SecretId=arn, VersionStage="AWSCURRENT", MoveToVersionId=token,
                                       RemoveFromVersionId=current)
