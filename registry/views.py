from django.contrib.auth.decorators import login_required
from django.shortcuts import render

from registry.selectors import get_user_roles, list_user_organizations


def home(request):
    return render(
        request,
        "registry/home.html",
        {"organizations": list_user_organizations(user=request.user)},
    )


@login_required
def account(request):
    return render(
        request,
        "registry/account.html",
        {
            "organizations": list_user_organizations(user=request.user),
            "roles": get_user_roles(user=request.user),
        },
    )
