# workbench-images:profile-filter
#
# Rendered into the z2jh chart's hub.extraConfig by renderProfileFilterConfig() in components/hub/profiles.ts, which replaces the
# two r'''...''' literals below with the profile list and the owner map as JSON. Edit this file, not a rendered copy.
#
# Every user is offered the shared profiles; a personal profile (seed 002: one image per user and project, with the
# user's UID/GID baked in) is offered only to its owner. KubeSpawner 7 accepts a callable profile_list and calls it
# with the spawner both to render the spawn form and again in load_user_options() when the server starts, so a personal
# profile requested by anyone else, through the form or the REST API, fails there with "No such profile".
#
# z2jh 4.4.0 exec()s extraConfig at the top level of jupyterhub_config.py after it applied singleuser.profileList, and
# this replaces that setting: singleuser.profileList must stay empty. Imports live inside the function and data travels
# through arguments, so the code also works when exec()'d with separate globals and locals.

_workbench_profiles_json = r'''[]'''
_workbench_owners_json = r'''{}'''


def _workbench_profile_list_for(profiles_json, owners_json):
    import copy
    import json

    profiles = json.loads(profiles_json)
    # Owners are logins; JupyterHub's default Authenticator.normalize_username lowercases a login before it becomes
    # user.name, so the same is done here. user.name itself is compared as it is: with an authenticator that keeps
    # capitals, a capitalised owner matches no one (fail closed) rather than every spelling of the name.
    owners = {slug: login.lower() for slug, login in json.loads(owners_json).items()}
    unknown = sorted(set(owners) - {p["slug"] for p in profiles})
    if unknown:
        raise ValueError(
            "workbench-images profile filter: owners name profiles that do not exist: " + ", ".join(unknown)
        )

    def offered_to(profile, user_name):
        owner = owners.get(profile["slug"])
        return owner is None or owner == user_name

    def profile_list(spawner):
        user_name = spawner.user.name
        # Copies, so nothing KubeSpawner does to a returned profile leaks into another user's list.
        return [copy.deepcopy(p) for p in profiles if offered_to(p, user_name)]

    print(
        "workbench-images profile filter: %d profiles, %d of them personal" % (len(profiles), len(owners))
    )
    return profile_list


c.KubeSpawner.profile_list = _workbench_profile_list_for(_workbench_profiles_json, _workbench_owners_json)
del _workbench_profiles_json, _workbench_owners_json, _workbench_profile_list_for
