"""/api/v1/channels (DESIGN.md §6): anyone signed in reads; admins create and change.
Secret settings are accepted but never returned."""

from __future__ import annotations

from flask import current_app, jsonify

from ..errors import N_, NotFound
from ..extensions import db
from ..models import Channel
from ..services import channels as channel_service
from ..services import options
from . import api_bp, json_body
from .auth import api_role, api_user
from .openapi import array, operation, ref


def _channel(channel_id: int) -> Channel:
    channel = db.session.get(Channel, channel_id)
    if channel is None:
        raise NotFound(N_("No such channel."))
    return channel


@api_bp.get("/channels")
@api_role("viewer")
@operation("List channels", tag="Channels", response=array(ref("Channel")))
def channels_list():
    return jsonify([channel_service.channel_dict(c) for c in options.channels(db.session)])


@api_bp.post("/channels")
@api_role("admin")
@operation("Create a channel", tag="Channels", body="ChannelCreate", status=201,
           response="Channel",
           service_check=lambda data: channel_service.check_settings(db.session, data))
def channels_create():
    channel = channel_service.create_channel(
        db.session, json_body(), secret_key=current_app.config["SECRET_KEY"], actor=api_user())
    db.session.commit()
    return jsonify(channel_service.channel_dict(channel)), 201


@api_bp.get("/channels/<int:channel_id>")
@api_role("viewer")
@operation("Show a channel", tag="Channels", response="Channel")
def channels_show(channel_id: int):
    return jsonify(channel_service.channel_dict(_channel(channel_id)))


@api_bp.patch("/channels/<int:channel_id>")
@api_role("admin")
@operation("Change a channel", tag="Channels", body="ChannelUpdate", response="Channel",
           service_check=lambda data, channel_id: channel_service.check_settings(
               db.session, data, _channel(channel_id)))
def channels_update(channel_id: int):
    channel = _channel(channel_id)
    channel_service.update_channel(db.session, channel, json_body(),
                                   secret_key=current_app.config["SECRET_KEY"], actor=api_user())
    db.session.commit()
    return jsonify(channel_service.channel_dict(channel))
