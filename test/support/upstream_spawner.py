#!/usr/bin/python3
"""Upstream oracle (issue #11): what z2jh 4.4.0 and KubeSpawner 7.0.0 make of our hub values, run with their own code.

Reads one JSON request on stdin:

    {"upstream": "<../shared/upstream>", "values": {<merged Helm values>},
     "release": {"name": "jupyterhub", "namespace": "jupyterhub"},
     "requests": [{"username": "<login>", "profile": "<slug>" | null, "options": {"pool": "h100"}}]}

and writes one JSON answer on stdout:

    {"results": [{"userName": "...", "visibleSlugs": [...], "profiles": [...], "pod": {...}} | {"userName", "visibleSlugs",
     "profiles", "error": "..."}]}

What runs is upstream code, unmodified except for two things done to copies made here:
- z2jh's files/hub/jupyterhub_config.py and z2jh.py read /usr/local/etc/jupyterhub/...; the copies read a temp dir
  that holds what the chart mounts there: secret/values.yaml (the merged values plus Chart and Release, as the
  chart's hub Secret holds them), the two seeded secrets, and config/<name> files (the chart's hub ConfigMap of
  resource names). The config is loaded as JupyterHub loads it: traitlets' PyFileConfigLoader exec()s it with
  `c = get_config()`; it in turn exec()s every hub.extraConfig snippet.
- KubeSpawner imports kubernetes_asyncio, which Debian does not ship. Its model classes have the same names in
  kubernetes.client.models, so kubernetes_asyncio.client(.models) is aliased to those. API classes (CoreV1Api, ...)
  and kubernetes_asyncio.config are stand-ins that never reach a server: any API call raises, which would show up
  as an error here, never as a silent success.

Per request: the username goes through JupyterHub's Authenticator.normalize_username (the hub's config applies), a
KubeSpawner is built with `_mock=True` on a fresh copy of the config, the profile list is resolved as
KubeSpawner.load_user_options resolves it (a callable profile_list is called with the spawner), user_options
{"profile": slug, **options} are applied through load_user_options (validation, _load_profile, _apply_overrides),
and get_pod_manifest() is serialized with kubernetes' ApiClient.sanitize_for_serialization.

Needs Debian's /usr/bin/python3 with: jupyterhub, python3-kubernetes, python3-traitlets, python3-jinja2,
python3-yaml, python3-escapism, python3-slugify, python3-pycurl.
"""

import asyncio
import contextlib
import copy
import json
import os
import shutil
import sys
import tempfile
import traceback
import types

CHART_HUB_PREFIX = "/usr/local/etc/jupyterhub"


def fail(message):
    sys.stderr.write(f"upstream_spawner.py: {message}\n")
    sys.exit(2)


# ---------------------------------------------------------------------------------------------------------------
# kubernetes_asyncio -> kubernetes (models only)
# ---------------------------------------------------------------------------------------------------------------


class _NoApiServer:
    """Stands in for kubernetes_asyncio's API classes: the oracle must never talk to a cluster."""

    def __init__(self, *args, **kwargs):
        self.api_client = _NoApiClient()

    def __getattr__(self, name):
        def call(*args, **kwargs):
            raise RuntimeError(f"kubernetes API call {name}() attempted; the upstream oracle has no API server")

        return call


class _NoApiClient:
    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        return False


def install_kubernetes_asyncio_alias():
    import kubernetes.client
    import kubernetes.client.api_client
    import kubernetes.client.models
    import kubernetes.client.rest
    import kubernetes.watch

    client = types.ModuleType("kubernetes_asyncio.client")
    for name, value in vars(kubernetes.client).items():
        if not name.startswith("__"):
            setattr(client, name, value)
    # Every *Api class (CoreV1Api, NetworkingV1Api, ...) is a stand-in; models, Configuration and rest stay real.
    for name in dir(kubernetes.client):
        if name.endswith("Api") and name[:1].isupper():
            setattr(client, name, type(name, (_NoApiServer,), {}))
    client.models = kubernetes.client.models
    client.rest = kubernetes.client.rest
    client.api_client = kubernetes.client.api_client

    class ConfigException(Exception):
        pass

    config = types.ModuleType("kubernetes_asyncio.config")
    config.ConfigException = ConfigException
    config.load_incluster_config = lambda *a, **k: None

    async def load_kube_config(*a, **k):
        return None

    config.load_kube_config = load_kube_config

    package = types.ModuleType("kubernetes_asyncio")
    package.__path__ = []
    package.client = client
    package.config = config
    package.watch = kubernetes.watch
    sys.modules.update(
        {
            "kubernetes_asyncio": package,
            "kubernetes_asyncio.client": client,
            "kubernetes_asyncio.client.models": kubernetes.client.models,
            "kubernetes_asyncio.client.rest": kubernetes.client.rest,
            "kubernetes_asyncio.client.api_client": kubernetes.client.api_client,
            "kubernetes_asyncio.config": config,
            "kubernetes_asyncio.watch": kubernetes.watch,
        }
    )


# ---------------------------------------------------------------------------------------------------------------
# z2jh's hub config in a temp dir
# ---------------------------------------------------------------------------------------------------------------


def resource_names(values, release_name):
    """The chart's hub ConfigMap of resource names (templates/_helpers-names.tpl): with fullnameOverride "" (the
    chart default) names carry no prefix; a non-blank fullnameOverride prefixes them with "<override>-"."""
    override = values.get("fullnameOverride")
    prefix = f"{override}-" if isinstance(override, str) and override != "" else ""
    if override is None:
        prefix = f"{release_name}-"
    short = [
        "hub",
        "hub-serviceaccount",
        "hub-existing-secret",
        "hub-existing-secret-or-default",
        "hub-pvc",
        "proxy",
        "proxy-api",
        "proxy-http",
        "proxy-public",
        "proxy-public-tls",
        "proxy-public-manual-tls",
        "autohttps",
        "singleuser",
        "image-pull-secret",
        "image-puller-priority",
        "user-placeholder",
        "user-scheduler",
        "user-scheduler-deploy",
        "user-scheduler-lock",
    ]
    names = {n: f"{prefix}{n}" for n in short}
    names["priority"] = f"{prefix or release_name + '-'}default-priority"
    return names


def go_empty(value):
    """Go's reflect-based emptiness as mergo applies it (isEmptyValue)."""
    return value is None or value is False or (isinstance(value, (int, float)) and not isinstance(value, bool) and value == 0) or (
        isinstance(value, (str, list, dict)) and len(value) == 0
    )


def prepare_hub_dir(tmp, upstream, values, release):
    import yaml

    hub_src = os.path.join(upstream, "zero-to-jupyterhub-4.4.0", "files", "hub")
    for name in ("jupyterhub_config.py", "z2jh.py"):
        with open(os.path.join(hub_src, name)) as f:
            source = f.read()
        if name == "z2jh.py" and CHART_HUB_PREFIX not in source:
            fail(f"{hub_src}/z2jh.py no longer reads {CHART_HUB_PREFIX}; update the path rewrite")
        with open(os.path.join(tmp, name), "w") as f:
            f.write(source.replace(CHART_HUB_PREFIX, tmp))

    # The chart's hub Secret: values.yaml is .Values plus Chart and Release (templates/hub/secret.yaml).
    secret = os.path.join(tmp, "secret")
    os.makedirs(secret)
    # templates/hub/secret.yaml renders `merge dict .Values`: sprig's merge (mergo) skips top-level values that Go
    # deems empty (null, "", false, 0, empty list or map), so e.g. `nameOverride: null` is absent there and
    # get_config("nameOverride", default=...) falls back to the chart name. Nested values are copied as they are.
    chart_values = {k: copy.deepcopy(v) for k, v in values.items() if not go_empty(v)}
    chart_values["Chart"] = {"Name": "jupyterhub", "Version": "4.4.0"}
    chart_values["Release"] = {"Name": release["name"], "Namespace": release["namespace"]}
    with open(os.path.join(secret, "values.yaml"), "w") as f:
        yaml.safe_dump(chart_values, f)
    # Seeded by the chart on install (templates/hub/_helpers-passwords.tpl); their values do not matter here.
    for key, value in (
        ("hub.config.JupyterHub.cookie_secret", "00" * 32),
        ("hub.config.CryptKeeper.keys", "11" * 32),
    ):
        with open(os.path.join(secret, key), "w") as f:
            f.write(value)

    config = os.path.join(tmp, "config")
    os.makedirs(config)
    for short, full in resource_names(values, release["name"]).items():
        with open(os.path.join(config, short), "w") as f:
            f.write(full)
        # Kubernetes sets <SERVICE>_SERVICE_PORT for Services in the namespace; get_name_env reads two of them.
        os.environ[full.upper().replace("-", "_") + "_SERVICE_PORT"] = {"proxy-api": "8001", "hub": "8081"}.get(short, "80")
    os.environ["POD_NAMESPACE"] = release["namespace"]


def load_hub_config(tmp):
    from traitlets.config.loader import PyFileConfigLoader

    sys.path.insert(0, tmp)
    return PyFileConfigLoader("jupyterhub_config.py", path=tmp).load_config()


# ---------------------------------------------------------------------------------------------------------------
# Spawning
# ---------------------------------------------------------------------------------------------------------------


class MockObject:
    pass


def mock_user(name, index):
    # The fields KubeSpawner and Spawner.get_env read from JupyterHub's User (kubespawner's own tests mock the same).
    user = MockObject()
    user.name = name
    user.id = index + 1
    user.escaped_name = name
    user.url = f"/user/{name}/"
    return user


def mock_hub():
    hub = MockObject()
    hub.public_host = "hub.example.test"
    hub.url = "http://hub:8081/hub/"
    hub.base_url = "/hub/"
    hub.api_url = "http://hub:8081/hub/api"
    return hub


async def resolve_profiles(spawner):
    """The initialized profile list exactly as load_user_options computes it for this spawner's user."""
    from jupyterhub.utils import maybe_future

    profile_list = spawner.profile_list
    if callable(profile_list):
        profile_list = await maybe_future(profile_list(spawner))
    return spawner._get_initialized_profile_list(profile_list)


async def spawn_all(config, requests):
    import kubernetes.client
    from jupyterhub.auth import Authenticator
    from kubespawner import KubeSpawner

    serializer = kubernetes.client.ApiClient()
    authenticator = Authenticator(config=copy.deepcopy(config))
    results = []
    for index, request in enumerate(requests):
        user_name = authenticator.normalize_username(request["username"])
        result = {"userName": user_name}
        try:
            spawner = KubeSpawner(
                config=copy.deepcopy(config), user=mock_user(user_name, index), hub=mock_hub(), _mock=True
            )
            profiles = await resolve_profiles(spawner)
            result["visibleSlugs"] = [p["slug"] for p in profiles]
            result["profiles"] = json.loads(json.dumps(profiles, default=repr))
            user_options = {}
            if request.get("profile"):
                user_options["profile"] = request["profile"]
            user_options.update(request.get("options") or {})
            spawner.user_options = user_options
            await spawner.load_user_options()
            pod = await spawner.get_pod_manifest()
            result["pod"] = serializer.sanitize_for_serialization(pod)
        except Exception as e:  # a refused profile is an answer, not a crash
            result["error"] = f"{type(e).__name__}: {e}"
            result["traceback"] = traceback.format_exc()
        results.append(result)
    return results


def main():
    try:
        request = json.load(sys.stdin)
    except ValueError as e:
        fail(f"stdin is not JSON: {e}")
    upstream = request.get("upstream")
    if not upstream or not os.path.isdir(upstream):
        fail(f"upstream folder {upstream!r} does not exist")
    sys.path.insert(0, os.path.join(upstream, "kubespawner-7.0.0"))
    install_kubernetes_asyncio_alias()

    out = sys.stdout
    tmp = tempfile.mkdtemp(prefix="z2jh-hub-")
    try:
        # z2jh and KubeSpawner print progress to stdout; the answer alone goes there.
        with contextlib.redirect_stdout(sys.stderr):
            prepare_hub_dir(tmp, upstream, request["values"], request["release"])
            config = load_hub_config(tmp)
            import kubespawner

            if kubespawner.__version__ != "7.0.0":
                fail(f"expected KubeSpawner 7.0.0 from {upstream}, imported {kubespawner.__version__} from {kubespawner.__file__}")
            results = asyncio.run(spawn_all(config, request["requests"]))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    json.dump({"results": results}, out)
    out.write("\n")


if __name__ == "__main__":
    main()
