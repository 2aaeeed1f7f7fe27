"""The generated `deploy/k8s/`: schema-valid manifests and overlays that follow the run-time policy.

No cluster and no kubectl: the manifests are validated offline against the Kubernetes OpenAPI
schemas shipped by `kubernetes-validate`, and the overlays are rendered by `render` below, which
implements the part of kustomize they use (resources, namespace, images, JSON 6902 patches and
patch files without lists, where a strategic merge is a plain deep merge). A kustomization using
anything else fails `test_kustomizations_use_only_what_render_implements`, so the rendering
can never quietly differ from `kubectl kustomize`.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, cast

import jsonpatch
import kubernetes_validate
import pytest
import yaml
from cookiecutter.main import cookiecutter

from tests.support import TEMPLATE_DIR

Resource = dict[str, Any]

# The oldest Kubernetes minor the manifests target: `preStop.sleep` needs 1.30.
KUBERNETES_VERSION = "1.30"
RENDERED_FIELDS = frozenset({"apiVersion", "kind", "namespace", "resources", "images", "patches"})
CLUSTER_SCOPED = frozenset({"Namespace", "ClusterRole", "ClusterRoleBinding"})
OVERLAYS = ("dev", "prod")
APP = "my-service"


@pytest.fixture(scope="module")
def projects(
    tmp_path_factory: pytest.TempPathFactory, cookiecutter_config: Path
) -> dict[str, Path]:
    """The default bake (with Celery) and one without Celery."""
    baked = {}
    for name, extra in (("celery", {}), ("no_celery", {"use_celery": "n"})):
        baked[name] = Path(
            cookiecutter(
                str(TEMPLATE_DIR),
                no_input=True,
                extra_context=extra,
                output_dir=str(tmp_path_factory.mktemp(name)),
                config_file=str(cookiecutter_config),
            )
        )
    return baked


@pytest.fixture(scope="module")
def project(projects: dict[str, Path]) -> Path:
    return projects["celery"]


def load(path: Path) -> list[Resource]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def kustomization(folder: Path) -> Resource:
    [document] = load(folder / "kustomization.yaml")
    return document


def deep_merge(target: Resource, patch: Resource) -> None:
    for key, value in patch.items():
        if isinstance(value, dict) and isinstance(target.get(key), dict):
            deep_merge(target[key], value)
        else:
            target[key] = copy.deepcopy(value)


def has_list(value: object) -> bool:
    if isinstance(value, list):
        return True
    return isinstance(value, dict) and any(has_list(item) for item in value.values())


def json_patch(operations: list[Resource]) -> Callable[[Resource], Resource]:
    patch = jsonpatch.JsonPatch(operations)
    return lambda resource: cast(Resource, patch.apply(resource))


def pod_containers(resource: Resource) -> Iterator[Resource]:
    spec = resource.get("spec", {}).get("template", {}).get("spec", {})
    yield from spec.get("initContainers", [])
    yield from spec.get("containers", [])


def matches(resource: Resource, target: Resource) -> bool:
    return bool(
        resource["kind"] == target["kind"] and resource["metadata"]["name"] == target["name"]
    )


def render(folder: Path) -> list[Resource]:
    """What `kubectl kustomize folder` prints, for the fields RENDERED_FIELDS."""
    config = kustomization(folder)
    resources: list[Resource] = []
    for entry in config.get("resources", []):
        path = folder / entry
        resources.extend(render(path) if path.is_dir() else load(path))
    for patch in config.get("patches", []):
        if "path" in patch:
            [document] = load(folder / patch["path"])
            # Without lists a strategic merge patch is a deep merge.
            assert not has_list(document), f"{patch['path']}: lists need a strategic merge"
            target = {"kind": document["kind"], "name": document["metadata"]["name"]}
        else:
            target = patch["target"]
        targets = [resource for resource in resources if matches(resource, target)]
        assert len(targets) == 1, f"{folder}: patch target {target} matches {len(targets)}"
        if "path" in patch:
            deep_merge(targets[0], document)
        else:
            targets[0].update(json_patch(yaml.safe_load(patch["patch"]))(targets[0]))
    for image in config.get("images", []):
        for resource in resources:
            for container in pod_containers(resource):
                if container["image"].split(":")[0] == image["name"]:
                    name = image.get("newName", image["name"])
                    container["image"] = f"{name}:{image['newTag']}"
    if "namespace" in config:
        for resource in resources:
            if resource["kind"] not in CLUSTER_SCOPED:
                resource["metadata"]["namespace"] = config["namespace"]
    return resources


def by_kind(resources: list[Resource], kind: str) -> list[Resource]:
    return [resource for resource in resources if resource["kind"] == kind]


def named(resources: list[Resource], kind: str, name: str) -> Resource:
    [resource] = [r for r in by_kind(resources, kind) if r["metadata"]["name"] == name]
    return resource


def k8s(project: Path) -> Path:
    return project / "deploy" / "k8s"


def test_every_base_manifest_is_valid(project: Path) -> None:
    files = sorted((k8s(project) / "base").glob("*.yaml"))
    assert len(files) >= 9
    for path in files:
        if path.name == "kustomization.yaml":
            continue
        for resource in load(path):
            kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)


@pytest.mark.parametrize("overlay", OVERLAYS)
@pytest.mark.parametrize("variant", ["celery", "no_celery"])
def test_rendered_overlays_are_valid(projects: dict[str, Path], variant: str, overlay: str) -> None:
    resources = render(k8s(projects[variant]) / "overlays" / overlay)
    for resource in resources:
        kubernetes_validate.validate(resource, KUBERNETES_VERSION, strict=True)
        assert resource["metadata"]["namespace"] == (f"{APP}-dev" if overlay == "dev" else APP)
    deployments = {resource["metadata"]["name"] for resource in by_kind(resources, "Deployment")}
    with_celery = {f"{APP}-api", f"{APP}-worker", f"{APP}-beat"}
    assert deployments == (with_celery if variant == "celery" else {f"{APP}-api"})


def test_kustomizations_use_only_what_render_implements(projects: dict[str, Path]) -> None:
    for project in projects.values():
        for path in k8s(project).rglob("kustomization.yaml"):
            assert set(kustomization(path.parent)) <= RENDERED_FIELDS, path


def test_without_celery_nothing_of_it_is_left(projects: dict[str, Path]) -> None:
    folder = k8s(projects["no_celery"])
    assert not [path for path in folder.rglob("*") if re.search("worker|beat", path.name)]
    assert "celery" not in "".join(path.read_text().lower() for path in folder.rglob("*.yaml"))


def test_overlays_change_what_they_say(project: Path) -> None:
    dev = render(k8s(project) / "overlays" / "dev")
    prod = render(k8s(project) / "overlays" / "prod")
    assert named(dev, "Deployment", f"{APP}-api")["spec"]["replicas"] == 1
    assert named(prod, "Deployment", f"{APP}-api")["spec"]["replicas"] == 3
    assert named(prod, "Deployment", f"{APP}-worker")["spec"]["replicas"] == 3
    assert named(prod, "HorizontalPodAutoscaler", f"{APP}-api")["spec"]["minReplicas"] == 3
    assert named(dev, "ConfigMap", f"{APP}-config")["data"]["LOG_LEVEL"] == "DEBUG"
    [image] = {c["image"] for r in prod for c in pod_containers(r)}
    assert image == f"{APP}:0.1.0"


class TestPolicy:
    """What every pod must do, read from the rendered production overlay."""

    @pytest.fixture
    def resources(self, project: Path) -> list[Resource]:
        return render(k8s(project) / "overlays" / "prod")

    @pytest.fixture
    def image_uid(self, project: Path) -> int:
        match = re.search(r"--uid (\d+)", (project / "Dockerfile").read_text())
        assert match is not None
        return int(match[1])

    def pods(self, resources: list[Resource]) -> list[Resource]:
        return [r for r in resources if r["kind"] in {"Deployment", "Job"}]

    def test_every_pod_runs_as_the_images_non_root_user(
        self, resources: list[Resource], image_uid: int
    ) -> None:
        for resource in self.pods(resources):
            pod = resource["spec"]["template"]["spec"]
            assert pod["securityContext"]["runAsNonRoot"] is True
            assert pod["securityContext"]["runAsUser"] == image_uid
            assert pod["automountServiceAccountToken"] is False

    def test_every_container_is_locked_down_and_bounded(self, resources: list[Resource]) -> None:
        for resource in self.pods(resources):
            volumes = {v["name"]: v for v in resource["spec"]["template"]["spec"]["volumes"]}
            for container in pod_containers(resource):
                context = container["securityContext"]
                assert context["readOnlyRootFilesystem"] is True
                assert context["allowPrivilegeEscalation"] is False
                assert context["capabilities"]["drop"] == ["ALL"]
                for bound in ("requests", "limits"):
                    assert set(container["resources"][bound]) == {"cpu", "memory"}
                [tmp] = [m for m in container["volumeMounts"] if m["mountPath"] == "/tmp"]  # noqa: S108
                assert "emptyDir" in volumes[tmp["name"]]

    def test_api_probes_use_the_health_routes(
        self, project: Path, resources: list[Resource]
    ) -> None:
        [container] = pod_containers(named(resources, "Deployment", f"{APP}-api"))
        assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
        assert container["livenessProbe"]["httpGet"]["path"] == "/health/live"
        assert container["startupProbe"]["httpGet"]["path"] == "/health/live"
        health = next(project.glob("src/*/api/health.py")).read_text()
        assert 'prefix="/health"' in health
        assert '"/ready"' in health
        assert '"/live"' in health

    def test_grace_period_covers_the_servers_graceful_shutdown(
        self, project: Path, resources: list[Resource]
    ) -> None:
        pod = named(resources, "Deployment", f"{APP}-api")["spec"]["template"]["spec"]
        shutdown = int(
            named(resources, "ConfigMap", f"{APP}-config")["data"]["SHUTDOWN_TIMEOUT_SECONDS"]
        )
        pause = pod["containers"][0]["lifecycle"]["preStop"]["sleep"]["seconds"]
        assert pod["terminationGracePeriodSeconds"] > shutdown + pause
        cli = next(project.glob("src/*/cli.py")).read_text()
        assert "timeout_graceful_shutdown=settings.shutdown_timeout_seconds" in cli

    def test_service_hpa_and_pdb_select_the_api_pods(self, resources: list[Resource]) -> None:
        api = named(resources, "Deployment", f"{APP}-api")
        labels = api["spec"]["template"]["metadata"]["labels"]
        service = named(resources, "Service", f"{APP}-api")
        assert service["spec"]["selector"].items() <= labels.items()
        ports = {port["name"] for port in api["spec"]["template"]["spec"]["containers"][0]["ports"]}
        assert {port["targetPort"] for port in service["spec"]["ports"]} <= ports
        pdb = named(resources, "PodDisruptionBudget", f"{APP}-api")
        assert pdb["spec"]["selector"]["matchLabels"].items() <= labels.items()
        hpa = named(resources, "HorizontalPodAutoscaler", f"{APP}-api")
        assert hpa["spec"]["scaleTargetRef"]["name"] == f"{APP}-api"

    def test_selectors_name_the_app(self, resources: list[Resource]) -> None:
        for deployment in by_kind(resources, "Deployment"):
            selector = deployment["spec"]["selector"]["matchLabels"]
            assert selector["app.kubernetes.io/name"] == APP

    def test_beat_is_a_single_replica_never_two(self, resources: list[Resource]) -> None:
        beat = named(resources, "Deployment", f"{APP}-beat")
        assert beat["spec"]["replicas"] == 1
        assert beat["spec"]["strategy"]["type"] == "Recreate"

    def test_migration_job_runs_db_upgrade_and_says_when(
        self, project: Path, resources: list[Resource]
    ) -> None:
        job = named(resources, "Job", f"{APP}-migrate")
        [container] = pod_containers(job)
        assert container["command"][-2:] == ["db", "upgrade"]
        assert job["spec"]["template"]["spec"]["restartPolicy"] == "Never"
        note = (k8s(project) / "base" / "migrate-job.yaml").read_text()
        assert "# Ordering: this Job must complete before the Deployments" in note
        assert "advisory lock" in note
        assert f"kubectl wait --for=condition=complete job/{APP}-migrate" in note
        readme = (project / "README.md").read_text()
        assert f"kubectl wait --for=condition=complete job/{APP}-migrate" in readme

    def test_pods_read_the_config_and_the_secret(self, resources: list[Resource]) -> None:
        for resource in self.pods(resources):
            for container in pod_containers(resource):
                sources = container["envFrom"]
                assert {"configMapRef": {"name": f"{APP}-config"}} in sources
                assert {"secretRef": {"name": f"{APP}-secrets"}} in sources

    def test_secret_example_holds_no_secret_and_is_never_applied(
        self, project: Path, resources: list[Resource]
    ) -> None:
        [secret] = load(k8s(project) / "base" / "secret.example.yaml")
        assert secret["metadata"]["name"] == f"{APP}-secrets"
        assert set(secret["stringData"]) >= {"SECRET_KEY", "DATABASE_URL", "REDIS_URL"}
        for value in secret["stringData"].values():
            assert "change-me" in value
        assert by_kind(resources, "Secret") == []
