"""MockUSDC's EIP-3009 transferWithAuthorization: what x402's "exact" scheme pays with (the gas benchmark's
baseline), with each refusal named."""

import sys
from pathlib import Path

import ape
from conftest import UNIT

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
from exact_payment import sign_transfer_authorization


def test_transfer_with_authorization__moves_once_on_the_signers_word(chain, token, payer, payee, stranger):
    args = sign_transfer_authorization(payer.private_key, token=token.address, chain_id=chain.chain_id,
                                       to=payee.address, value=UNIT, valid_before=chain.pending_timestamp + 600)
    before = token.balanceOf(payee)
    receipt = token.transferWithAuthorization(*args, sender=stranger)  # anyone submits
    assert token.balanceOf(payee) - before == UNIT and token.authorizationState(payer, args[5])
    assert receipt.events[-1].event_name == "Transfer"
    with ape.reverts(token.AuthorizationAlreadyUsed):
        token.transferWithAuthorization(*args, sender=stranger)


def test_transfer_with_authorization__refuses_other_signers_and_expired(chain, token, payer, payee, stranger):
    forged = sign_transfer_authorization(stranger.private_key, token=token.address, chain_id=chain.chain_id,
                                         to=payee.address, value=UNIT, valid_before=chain.pending_timestamp + 600)
    with ape.reverts(token.InvalidAuthorizationSignature):
        token.transferWithAuthorization(payer.address, *forged[1:], sender=stranger)
    expired = sign_transfer_authorization(payer.private_key, token=token.address, chain_id=chain.chain_id,
                                          to=payee.address, value=UNIT, valid_before=chain.pending_timestamp - 1)
    with ape.reverts(token.AuthorizationOutsideWindow):
        token.transferWithAuthorization(*expired, sender=stranger)
