// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

import {Registry} from "./Registry.sol";
import {SafeCast} from "./SafeCast.sol";
import {SettlementToken} from "./SettlementToken.sol";

/// @title Escrow
/// @notice Members' escrow accounts, the GRID and OPERATOR accounts, locks and withdrawals.
/// @dev Solvency (docs/trust.md): every token the contract owes is held.
///      - A binding bid locks its worst case from the member's free balance (Market); only
///        one interval at a time is between its binding round and settlement (`pendingInterval`),
///        and a lock counts only while its interval is pending, so settlement or expiry
///        releases every lock at once.
///      - Members withdraw only their free balance (balance minus the active lock).
///      - Member debt (negative balances, from consumption beyond escrow) is owed to the
///        GRID and OPERATOR accounts, whose withdrawals must leave grid + operator >= debt.
///      - Settlement reverts when it would leave grid < 0, operator < 0 or grid + operator
///        < debt: the GRID funds its payouts (anyone may `depositGrid`).
///      Then tokens held >= deposits - withdrawals = every withdrawable claim.
abstract contract Escrow is Registry {
    using SafeCast for uint256;
    using SafeCast for int256;

    /// @notice Escrow account of a member: balance (negative = debt), the lock of its binding
    ///         bid and the interval of that lock.
    struct Account {
        int128 balance;
        uint96 locked;
        uint32 lockInterval;
    }

    /// @notice A withdrawal exceeds the member's free balance (balance minus active lock).
    error InsufficientFreeBalance(uint32 member, int256 free, uint256 amount);
    /// @notice A GRID/OPERATOR withdrawal exceeds what is backed by tokens held.
    error UnbackedWithdrawal(uint32 account, int256 available, uint256 amount);
    /// @notice Settlement would leave the GRID/OPERATOR accounts unable to back member debt.
    error ReserveShort(int256 gridMicro, int256 operatorMicro, uint256 memberDebtMicro);
    /// @notice The caller is not the account of the member.
    error NotMemberAccount(uint32 member, address caller);
    /// @notice A token transfer returned false.
    error TokenTransferFailed();
    /// @notice Withdrawals wait while a settlement is paged over several transactions.
    error SettlementPaging();

    /// @notice Tokens were deposited into an escrow account (member id, GRID_ACCOUNT).
    event Deposited(uint32 indexed account, address indexed from, uint256 amountMicro);
    /// @notice Tokens were withdrawn from an escrow account.
    event Withdrawn(uint32 indexed account, address indexed to, uint256 amountMicro);

    /// @notice The settlement token.
    SettlementToken public immutable token;

    mapping(uint32 => Account) internal _accounts;
    /// @notice Balance of the GRID account.
    int256 public gridBalanceMicro;
    /// @notice Balance of the OPERATOR (network fee) account.
    int256 public operatorBalanceMicro;
    /// @notice Sum of all member balances.
    int256 public memberBalanceSumMicro;
    /// @notice Sum of all member debts (negative balances), >= 0.
    uint256 public memberDebtMicro;
    /// @notice Tokens ever deposited.
    uint256 public totalDepositedMicro;
    /// @notice Tokens ever withdrawn.
    uint256 public totalWithdrawnMicro;
    /// @notice True while `pendingInterval` is between its binding round and settlement.
    bool public hasPendingInterval;
    /// @notice The interval whose locks are active (valid while hasPendingInterval).
    /// @dev Written by the Market's binding round and read by its desk's expiry, in the same
    ///      storage (DELEGATECALL); Slither reads the desk alone.
    // slither-disable-next-line uninitialized-state
    uint32 public pendingInterval;
    /// @notice True while a settlement is paged: some members are booked, the rest, GRID and
    ///         OPERATOR follow with its later pages (withdrawals wait).
    bool public settlementPaging;
    /// @notice Member changes booked by the settlement being paged (their counter-entries
    ///         come with its last page); 0 otherwise.
    int256 public settlingMicro;
    /// @notice The GRID's change of the readings a paged settlement has checked so far.
    int256 internal settlingGridMicro;
    /// @notice The OPERATOR's change of the readings a paged settlement has checked so far.
    int256 internal settlingFeesMicro;
    /// @notice The change of member debt the checked readings' changes will make.
    int256 internal settlingDebtMicro;

    /// @param token_ The settlement token.
    constructor(SettlementToken token_) {
        if (address(token_) == address(0)) revert ZeroAddress();
        token = token_;
    }

    // ------------------------------------------------------------------ views
    /// @notice Escrow balance of member `id` (negative = recorded debt).
    function balanceMicro(uint32 id) external view returns (int256) {
        return _accounts[id].balance;
    }

    /// @notice The active lock of member `id` (0 when its interval is settled or void).
    function lockedMicro(uint32 id) public view returns (uint256) {
        Account storage a = _accounts[id];
        return hasPendingInterval && a.lockInterval == pendingInterval ? a.locked : 0;
    }

    /// @notice Balance minus the active lock: what member `id` may withdraw (if > 0).
    function freeMicro(uint32 id) public view returns (int256) {
        return int256(_accounts[id].balance) - lockedMicro(id).toInt256();
    }

    /// @notice Tokens held on account: deposits - withdrawals.
    function heldMicro() public view returns (uint256) {
        return totalDepositedMicro - totalWithdrawnMicro;
    }

    /// @notice Tokens sent straight to the contract (outside deposits): held, owed to nobody.
    function strayMicro() external view returns (uint256) {
        uint256 actual = token.balanceOf(address(this));
        uint256 held = heldMicro();
        return actual > held ? actual - held : 0;
    }

    /// @notice Accounting identity: deposits - withdrawals == sum of all balances, and the
    ///         token balance covers it (stray tokens are tolerated).
    function conserved() external view returns (bool) {
        uint256 held = heldMicro();
        return held.toInt256() == memberBalanceSumMicro - settlingMicro + gridBalanceMicro + operatorBalanceMicro
            && token.balanceOf(address(this)) >= held;
    }

    /// @notice Every withdrawable claim is backed by tokens held: the token balance covers
    ///         deposits - withdrawals, and the GRID and OPERATOR accounts cover member debt.
    function solvent() external view returns (bool) {
        return token.balanceOf(address(this)) >= heldMicro() && gridBalanceMicro >= 0 && operatorBalanceMicro >= 0
            && gridBalanceMicro + operatorBalanceMicro >= memberDebtMicro.toInt256();
    }

    // --------------------------------------------------------------- deposits
    /// @notice Deposit `amountMicro` tokens (pulled from the caller) into member `id`'s escrow.
    function deposit(uint32 id, uint256 amountMicro) external {
        if (_members[id].account == address(0)) revert UnknownMember(id);
        _credit(id, amountMicro);
        _pull(amountMicro);
    }

    /// @notice Deposit into many members' escrow with one token transfer.
    function depositMany(uint32[] calldata ids, uint256[] calldata amountsMicro) external {
        uint256 n = ids.length;
        if (amountsMicro.length != n) revert LengthMismatch(n, amountsMicro.length);
        uint256 total = 0;
        for (uint256 k = 0; k < n; ++k) {
            if (_members[ids[k]].account == address(0)) revert UnknownMember(ids[k]);
            _credit(ids[k], amountsMicro[k]);
            total += amountsMicro[k];
        }
        _pull(total);
    }

    /// @notice Fund the GRID account (supplier of last resort) with `amountMicro` tokens.
    function depositGrid(uint256 amountMicro) external {
        gridBalanceMicro += amountMicro.toInt256();
        totalDepositedMicro += amountMicro;
        emit Deposited(GRID_ACCOUNT, msg.sender, amountMicro);
        _pull(amountMicro);
    }

    // ------------------------------------------------------------ withdrawals
    /// @notice Withdraw `amountMicro` of member `id`'s free balance to its account.
    function withdraw(uint32 id, uint256 amountMicro) external {
        if (_members[id].account != msg.sender) revert NotMemberAccount(id, msg.sender);
        if (settlementPaging) revert SettlementPaging();
        int256 free = freeMicro(id);
        if (free < amountMicro.toInt256()) revert InsufficientFreeBalance(id, free, amountMicro);
        _bookMember(id, -amountMicro.toInt256());
        _pay(id, msg.sender, amountMicro);
    }

    /// @notice Withdraw backed GRID credit to `to` (GRID account only).
    function withdrawGrid(address to, uint256 amountMicro) external {
        if (msg.sender != grid) revert NotGrid(msg.sender);
        if (to == address(0)) revert ZeroAddress();
        if (settlementPaging) revert SettlementPaging();
        int256 available = _backedWithdrawable(gridBalanceMicro);
        if (available < amountMicro.toInt256()) revert UnbackedWithdrawal(GRID_ACCOUNT, available, amountMicro);
        gridBalanceMicro -= amountMicro.toInt256();
        _pay(GRID_ACCOUNT, to, amountMicro);
    }

    /// @notice Withdraw backed OPERATOR (network fee) credit to `to` (operator only).
    function withdrawOperator(address to, uint256 amountMicro) external onlyOperator {
        if (to == address(0)) revert ZeroAddress();
        if (settlementPaging) revert SettlementPaging();
        int256 available = _backedWithdrawable(operatorBalanceMicro);
        if (available < amountMicro.toInt256()) {
            revert UnbackedWithdrawal(OPERATOR_ACCOUNT, available, amountMicro);
        }
        operatorBalanceMicro -= amountMicro.toInt256();
        _pay(OPERATOR_ACCOUNT, to, amountMicro);
    }

    /// @notice What the GRID account may withdraw now.
    function gridWithdrawableMicro() external view returns (int256) {
        return _backedWithdrawable(gridBalanceMicro);
    }

    /// @notice What the OPERATOR account may withdraw now.
    function operatorWithdrawableMicro() external view returns (int256) {
        return _backedWithdrawable(operatorBalanceMicro);
    }

    /// @dev min(own balance, grid + operator - member debt), never below 0.
    function _backedWithdrawable(int256 own) private view returns (int256 available) {
        int256 backing = gridBalanceMicro + operatorBalanceMicro - memberDebtMicro.toInt256();
        available = own < backing ? own : backing;
        if (available < 0) available = 0;
    }

    // -------------------------------------------------------------- internals
    /// @dev Add `delta` to member `id`'s balance, keeping the sums and the debt total.
    function _bookMember(uint32 id, int256 delta) internal returns (int256 balance) {
        Account storage a = _accounts[id];
        int256 before = a.balance;
        balance = before + delta;
        a.balance = balance.toInt128();
        memberBalanceSumMicro += delta;
        uint256 debtBefore = before < 0 ? uint256(-before) : 0;
        uint256 debtAfter = balance < 0 ? uint256(-balance) : 0;
        if (debtAfter != debtBefore) memberDebtMicro = memberDebtMicro + debtAfter - debtBefore;
    }

    /// @dev Lock `needed` of member `id`'s balance for the binding round of `interval` when
    ///      its balance covers it (every earlier lock is inactive here: no interval is pending
    ///      while a binding round records); returns the balance left free, negative (and
    ///      nothing locked) when it does not cover the lock.
    function _tryLock(uint32 id, uint32 interval, uint256 needed) internal returns (int256 free) {
        Account storage a = _accounts[id];
        free = int256(a.balance) - needed.toInt256();
        if (free >= 0) {
            a.locked = needed.toUint96();
            a.lockInterval = interval;
        }
    }

    /// @dev A paged settlement's check of one page: add up its GRID, OPERATOR and member-debt
    ///      changes (`ids[k]` changes by `deltas[k]`); the last check verifies the reserve the
    ///      whole settlement will leave, before any member is booked.
    function _checkPage(uint32[] memory ids, int256[] memory deltas, int256 gridDelta, int256 fees, bool last)
        internal
    {
        int256 debt = settlingDebtMicro;
        for (uint256 k = 0; k < ids.length; ++k) {
            int256 before = _accounts[ids[k]].balance;
            int256 balance = before + deltas[k];
            if (before < 0) debt += before;
            if (balance < 0) debt -= balance;
        }
        settlingDebtMicro = debt;
        gridDelta += settlingGridMicro;
        fees += settlingFeesMicro;
        settlingGridMicro = gridDelta;
        settlingFeesMicro = fees;
        if (last) _checkReserve(gridDelta, fees, (memberDebtMicro.toInt256() + debt).toUint256());
    }

    /// @dev Check the reserve an interval's settlement would leave: GRID and OPERATOR after
    ///      their changes non-negative and together covering `debt`.
    function _checkReserve(int256 gridDelta, int256 operatorDelta, uint256 debt)
        internal
        view
        returns (int256 g, int256 o)
    {
        g = gridBalanceMicro + gridDelta;
        o = operatorBalanceMicro + operatorDelta;
        if (g < 0 || o < 0 || g + o < debt.toInt256()) revert ReserveShort(g, o, debt);
    }

    /// @dev A settlement's last entry: book the GRID and OPERATOR changes its checks added up
    ///      (the reserve checked again), reset the settlement's totals and let deposits and
    ///      withdrawals resume. Returns the two changes.
    function _closeBooks() internal returns (int256 gridDelta, int256 operatorDelta) {
        (gridDelta, operatorDelta) = (settlingGridMicro, settlingFeesMicro);
        (gridBalanceMicro, operatorBalanceMicro) = _checkReserve(gridDelta, operatorDelta, memberDebtMicro);
        _endPaging();
    }

    /// @dev No settlement is under way any more: reset its totals; deposits and withdrawals
    ///      resume.
    function _endPaging() internal {
        settlementPaging = false;
        settlingMicro = 0;
        settlingGridMicro = 0;
        settlingFeesMicro = 0;
        settlingDebtMicro = 0;
    }

    function _credit(uint32 id, uint256 amountMicro) private {
        if (settlementPaging) revert SettlementPaging();
        _bookMember(id, amountMicro.toInt256());
        totalDepositedMicro += amountMicro;
        emit Deposited(id, msg.sender, amountMicro);
    }

    function _pull(uint256 amountMicro) private {
        if (!token.transferFrom(msg.sender, address(this), amountMicro)) revert TokenTransferFailed();
    }

    function _pay(uint32 account, address to, uint256 amountMicro) private {
        totalWithdrawnMicro += amountMicro;
        emit Withdrawn(account, to, amountMicro);
        if (!token.transfer(to, amountMicro)) revert TokenTransferFailed();
    }
}
