"""GET /api/v1/posts (DESIGN.md §6): the post list as JSON, same filters as the /posts page."""

from __future__ import annotations

from flask import current_app, jsonify, request

from ..extensions import db
from ..services import postlist
from . import api_bp
from .auth import api_role, api_user
from .openapi import operation
from .schemas import post_list_item


@api_bp.get("/posts")
@api_role("viewer")
@operation("List posts", tag="Posts", query="posts", response="PostList",
           query_check=lambda: postlist.parse_filters(request.args, "UTC"))
def list_posts():
    user = api_user()
    tz_name = user.timezone or current_app.config["CONTENTOPS_TIMEZONE"]
    filters = postlist.parse_filters(request.args, tz_name)
    page = postlist.list_posts(db.session, filters)
    return jsonify({
        "items": [post_list_item(post) for post in page.items],
        "total": page.total,
        "page": page.page,
        "per_page": page.per_page,
        "pages": page.pages,
    })
