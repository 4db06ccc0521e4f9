"""Channel kinds by name: the explicit list of adapter classes (DESIGN.md §5).

A new kind is one module with one ChannelAdapter subclass, added to ADAPTERS below
(tests/test_wiring.py fails while an adapter module is left out).
"""

from __future__ import annotations

from .base import ChannelAdapter
from .dingtalk_robot import DingTalkRobotAdapter
from .email import EmailAdapter
from .feishu_bot import FeishuBotAdapter
from .manual import ManualAdapter
from .web import WebAdapter
from .webhook import WebhookAdapter
from .wechat_mp import WeChatMPAdapter
from .wecom_customer import WeComCustomerAdapter
from .wecom_robot import WeComRobotAdapter

ADAPTERS: tuple[type[ChannelAdapter], ...] = (
    WebhookAdapter,
    WebAdapter,
    ManualAdapter,
    EmailAdapter,
    WeComRobotAdapter,
    DingTalkRobotAdapter,
    FeishuBotAdapter,
    WeComCustomerAdapter,
    WeChatMPAdapter,
)

_KINDS: dict[str, type[ChannelAdapter]] = {cls.kind: cls for cls in sorted(
    ADAPTERS, key=lambda cls: cls.kind)}


def adapter_class(kind: str) -> type[ChannelAdapter]:
    try:
        return _KINDS[kind]
    except KeyError:
        raise KeyError(f"unknown channel kind {kind!r}") from None


def kinds() -> dict[str, type[ChannelAdapter]]:
    """Every kind, by name in alphabetical order."""
    return dict(_KINDS)
