// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {IStreamChannels} from "../interfaces/IStreamChannels.sol";

/// @notice The strict `redeem` of each row, one after another in one transaction (so at one block time): the
///         reference a batch is compared with. Tests only.
interface IRedeem {
    function redeem(address payee, address token, IStreamChannels.Redemption calldata item)
        external
        returns (uint256 paid);
}

/// @title SequentialRedeemer
/// @notice Calls `redeem` for every row in order, catching each revert, and reports every outcome. Tests only.
contract SequentialRedeemer {
    /// @notice Row `index` paid `paid`, or reverted with the error selector `reason`.
    event Outcome(uint256 index, bytes32 channelId, uint256 paid, bytes4 reason);

    /// @notice Redeems `rows` one by one through `channels.redeem`.
    function redeemEach(IRedeem channels, address payee, address token, IStreamChannels.Redemption[] calldata rows)
        external
    {
        for (uint256 i = 0; i < rows.length; ++i) {
            try channels.redeem(payee, token, rows[i]) returns (uint256 paid) {
                emit Outcome(i, rows[i].channelId, paid, bytes4(0));
            } catch (bytes memory reason) {
                emit Outcome(i, rows[i].channelId, 0, bytes4(reason));
            }
        }
    }
}
