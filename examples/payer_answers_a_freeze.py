"""The payer answers a Sentinel freeze.

When a session key's spending spikes, the Sentinel of the merchant's relayer (any guardian the payer named) freezes
the channel on-chain: the key stops working, merchants refuse its vouchers (`channel_frozen`), and the payer is
told (webhook, e-mail, Telegram). Nobody but the payer can undo it:

    status              each channel: frozen or not, its signer, deposit and what was redeemed
    guardian ADDRESS    name who may freeze your channels (e.g. the relayer's guardian account), before any trip
    lift                the spending was mine: the key works again, with its original expiry
    confirm             it was not: the key is revoked for good (vouchers it already signed stay redeemable for the
                        redeem window); the deposit stays for a new key (the next agent run grants one) or a close

Which channels: --channel 0x..., else every channel remembered in PB_STATE_DIR (payer_setup.py).

    PB_PAYER_PRIVATE_KEY=0x59c6...690d python examples/payer_answers_a_freeze.py status
    PB_PAYER_PRIVATE_KEY=0x59c6...690d python examples/payer_answers_a_freeze.py lift

Settings: PB_PAYER_PRIVATE_KEY or PB_PAYER_KEYSTORE, PB_STATE_DIR, PB_RPC_URL, PB_CONTRACT (see payer_setup.py).
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from pathlib import Path

from payer_setup import remembered_channels
from pb_env import DEFAULT_RPC_URL, SettingError, address_setting, connect, fail, payer_account, setting, u
from protocolbanks.sdk.payer_channels import ChannelConfig, ChannelState, PayerChannels
from protocolbanks.sdk.transactions import ContractCallFailed
from web3 import Web3


def describe(config: ChannelConfig, state: ChannelState) -> str:
    status = "FROZEN" if state.frozen else "closing" if state.closing else "open" if state.open else "closed"
    return (f"channel 0x{config.channel_id.hex()} to {config.payee}: {status}, signer {state.signer}, "
            f"deposit {u(state.deposit)} U, redeemed {u(state.claimed)} U")


def answer(chain: PayerChannels, config: ChannelConfig, action: str,
           out: Callable[[str], None] = print) -> ChannelState:
    """`lift` or `confirm` a frozen channel (a channel that is not frozen is left alone); `status` only shows it."""
    state = chain.state(config)
    if action in ("lift", "confirm") and not state.frozen:
        out(f"not frozen, nothing to answer: {describe(config, state)}")
        return state
    if action == "lift":
        chain.lift_freeze(config)  # unfreeze(): the key is usable again
    elif action == "confirm":
        chain.confirm_freeze(config)  # revokeSessionKey(): the key is gone, the deposit stays
    state = chain.state(config)
    out(describe(config, state))
    return state


def channels_to_answer(chain: PayerChannels, channel: str | None, state_dir: Path) -> list[ChannelConfig]:
    ids = [channel] if channel else list(remembered_channels(state_dir).values())
    if not ids:
        raise SettingError(f"no channel: pass --channel 0x... (none is remembered in {state_dir})")
    configs = []
    for text in ids:
        config = chain.find_config(bytes.fromhex(text.removeprefix("0x")))
        if config is None:
            raise SettingError(f"no channel {text} on this chain")
        configs.append(config)
    return configs


def main() -> int:
    parser = argparse.ArgumentParser(description="Answer a Sentinel freeze of your channel(s).")
    parser.add_argument("action", choices=["status", "guardian", "lift", "confirm"])
    parser.add_argument("guardian", nargs="?", help="guardian: the address that may freeze your channels")
    parser.add_argument("--channel", help="0x channel id (default: the channels remembered in PB_STATE_DIR)")
    options = parser.parse_args()
    try:
        payer = payer_account(os.environ.get("PB_KEY_PASSPHRASE", ""))
        contract = address_setting("PB_CONTRACT", what="the StreamChannels contract", deployed_as="StreamChannels")
        w3 = connect(setting("PB_RPC_URL", DEFAULT_RPC_URL, what="the chain's JSON-RPC URL"), contract)
        chain = PayerChannels(w3, contract, payer)
        if options.action == "guardian":
            if not options.guardian or not Web3.is_address(options.guardian):
                return fail("usage: payer_answers_a_freeze.py guardian 0xADDRESS", 2)
            chain.set_guardian(options.guardian)
            print(f"{options.guardian} may now freeze the channels of {payer.address}")
            return 0
        state_dir = Path(setting("PB_STATE_DIR", "pb-payer-state", what="the payer's state folder"))
        for config in channels_to_answer(chain, options.channel, state_dir):
            answer(chain, config, options.action)
    except SettingError as exc:
        return fail(str(exc), 2)
    except (ContractCallFailed, ValueError) as exc:
        return fail(str(exc))
    return 0


if __name__ == "__main__":
    sys.exit(main())
