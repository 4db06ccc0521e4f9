"""/api/v1/audiences, /styles, /campaigns (DESIGN.md §6): anyone signed in reads, admins write."""

from __future__ import annotations

from flask import jsonify

from ..extensions import db
from ..services import taxonomy
from . import api_bp, json_body
from .auth import api_role, api_user
from .openapi import array, operation, ref

# URL segment → taxonomy kind.
COLLECTIONS = {"audiences": "audience", "styles": "style", "campaigns": "campaign"}


def _register(collection: str, kind_name: str) -> None:
    def list_view():
        records = taxonomy.list_records(db.session, kind_name)
        return jsonify([taxonomy.record_dict(r) for r in records])

    def create_view():
        record = taxonomy.create_record(db.session, kind_name, json_body(), actor=api_user())
        db.session.commit()
        return jsonify(taxonomy.record_dict(record)), 201

    def show_view(record_id: int):
        return jsonify(taxonomy.record_dict(
            taxonomy.get_record(db.session, kind_name, record_id)))

    def update_view(record_id: int):
        record = taxonomy.get_record(db.session, kind_name, record_id)
        taxonomy.update_record(db.session, kind_name, record, json_body(), actor=api_user())
        db.session.commit()
        return jsonify(taxonomy.record_dict(record))

    def delete_view(record_id: int):
        record = taxonomy.get_record(db.session, kind_name, record_id)
        taxonomy.delete_record(db.session, kind_name, record, actor=api_user())
        db.session.commit()
        return "", 204

    tag, record = collection.title(), kind_name.title()
    api_bp.add_url_rule(f"/{collection}", f"{collection}_list", api_role("viewer")(
        operation(f"List {collection}", tag=tag, response=array(ref(record)))(list_view)),
        methods=["GET"])
    api_bp.add_url_rule(f"/{collection}", f"{collection}_create", api_role("admin")(
        operation(f"Create a {kind_name}", tag=tag, body=f"{record}Create", status=201,
                  response=record,
                  service_check=lambda data: taxonomy.check(db.session, kind_name, data),
                  )(create_view)), methods=["POST"])
    api_bp.add_url_rule(f"/{collection}/<int:record_id>", f"{collection}_show",
                        api_role("viewer")(operation(f"Show a {kind_name}", tag=tag,
                                                     response=record)(show_view)),
                        methods=["GET"])
    api_bp.add_url_rule(f"/{collection}/<int:record_id>", f"{collection}_update",
                        api_role("admin")(operation(
                            f"Change a {kind_name}", tag=tag, body=f"{record}Update",
                            response=record,
                            service_check=lambda data, record_id: taxonomy.check(
                                db.session, kind_name, data,
                                taxonomy.get_record(db.session, kind_name, record_id)),
                        )(update_view)),
                        methods=["PATCH"])
    api_bp.add_url_rule(f"/{collection}/<int:record_id>", f"{collection}_delete",
                        api_role("admin")(operation(f"Delete a {kind_name}", tag=tag,
                                                    status=204)(delete_view)),
                        methods=["DELETE"])


for _collection, _kind in COLLECTIONS.items():
    _register(_collection, _kind)
