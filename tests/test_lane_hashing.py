"""The assembly hashes of the hot path equal their plain definitions (via the contract's public views)."""

from hypothesis import given, settings
from hypothesis import strategies as st
from protocolbanks.sdk import Voucher, lane_id_of

addresses = st.binary(min_size=20, max_size=20).map(lambda b: "0x" + b.hex())


@settings(max_examples=25, deadline=None)
@given(channel=st.binary(min_size=32, max_size=32), payee=addresses, token=addresses, signer=addresses,
       terms=st.integers(0, 2**256 - 1))
def test_lane_id__assembly_equals_abi_encode(channels, channel, payee, token, signer, terms):
    assert channels.laneIdOf(channel, payee, token, signer, terms) == lane_id_of(channel, payee, token, signer,
                                                                                 terms)


@settings(max_examples=25, deadline=None)
@given(channel=st.binary(min_size=32, max_size=32), epoch=st.integers(0, 2**24 - 1),
       amount=st.integers(0, 2**80 - 1))
def test_voucher_digest__redeem_path_equals_public_digest(channels, domain, channel, epoch, amount):
    assert channels.voucherDigest(channel, epoch, amount) == Voucher(channel, epoch, amount).digest(domain)
