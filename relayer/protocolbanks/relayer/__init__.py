"""ProtocolBanks relayer: accepts vouchers, watches spending, settles on-chain at thresholds."""
