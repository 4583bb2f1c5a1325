from kinship.identity import agent_of


def test_kinship_label_wins_over_everything() -> None:
    labels = {"kinship.dev/agent": "planner", "app.kubernetes.io/name": "web"}
    assert agent_of(labels, [("ReplicaSet", "other-abc")]) == "planner"


def test_app_name_label_when_no_kinship_label() -> None:
    assert agent_of({"app.kubernetes.io/name": "researcher"}) == "researcher"


def test_deployment_name_from_replicaset_and_template_hash() -> None:
    labels = {"pod-template-hash": "5d8f7c9b64"}
    assert agent_of(labels, [("ReplicaSet", "docs-agent-5d8f7c9b64")]) == "docs-agent"


def test_bare_replicaset_is_its_own_workload() -> None:
    assert agent_of({}, [("ReplicaSet", "legacy-rs")]) == "legacy-rs"


def test_statefulset_and_job_owners() -> None:
    assert agent_of(None, [("StatefulSet", "vector-store")]) == "vector-store"
    assert agent_of(None, [("Job", "nightly-eval")]) == "nightly-eval"


def test_non_workload_owner_skipped_and_bare_pod_has_no_agent() -> None:
    assert agent_of({}, [("Node", "n1")]) is None
    assert agent_of({}, []) is None
    assert agent_of({"app.kubernetes.io/name": ""}, []) is None
