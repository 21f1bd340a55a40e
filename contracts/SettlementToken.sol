// SPDX-License-Identifier: MIT
pragma solidity 0.8.28;

/// @title SettlementToken
/// @notice Minimal ERC-20 used to settle gridledger markets. One token is 10**6 micro-tokens
///         (6 decimals); every amount in the market is in micro-tokens.
/// @dev The minter (the market operator) may mint for simulations. No burn, no hooks.
contract SettlementToken {
    /// @notice The caller is not the minter.
    error NotMinter(address caller);
    /// @notice A transfer or approval names the zero address.
    error ZeroAddress();
    /// @notice The sender's balance is below the amount.
    error InsufficientTokenBalance(address owner, uint256 balance, uint256 needed);
    /// @notice The spender's allowance is below the amount.
    error InsufficientAllowance(address owner, address spender, uint256 allowance, uint256 needed);

    /// @notice ERC-20 transfer (also emitted for mints, from the zero address).
    event Transfer(address indexed from, address indexed to, uint256 value);
    /// @notice ERC-20 approval.
    event Approval(address indexed owner, address indexed spender, uint256 value);

    /// @notice Token name.
    string public constant name = "gridledger settlement token";
    /// @notice Token symbol.
    string public constant symbol = "GLT";
    /// @notice Decimals: amounts are micro-tokens.
    uint8 public constant decimals = 6;

    /// @notice The only account allowed to mint.
    address public immutable minter;
    /// @notice Total tokens in existence.
    uint256 public totalSupply;
    /// @notice Balance of each holder.
    mapping(address => uint256) public balanceOf;
    /// @notice Allowance of each (owner, spender).
    mapping(address => mapping(address => uint256)) public allowance;

    /// @param minter_ The account allowed to mint (the market operator).
    constructor(address minter_) {
        if (minter_ == address(0)) revert ZeroAddress();
        minter = minter_;
    }

    /// @notice Mint `amount` to `to` (simulations only).
    function mint(address to, uint256 amount) external {
        if (msg.sender != minter) revert NotMinter(msg.sender);
        if (to == address(0)) revert ZeroAddress();
        totalSupply += amount;
        balanceOf[to] += amount;
        emit Transfer(address(0), to, amount);
    }

    /// @notice Move `amount` from the caller to `to`.
    function transfer(address to, uint256 amount) external returns (bool) {
        _move(msg.sender, to, amount);
        return true;
    }

    /// @notice Allow `spender` to move up to `amount` of the caller's tokens.
    function approve(address spender, uint256 amount) external returns (bool) {
        if (spender == address(0)) revert ZeroAddress();
        allowance[msg.sender][spender] = amount;
        emit Approval(msg.sender, spender, amount);
        return true;
    }

    /// @notice Move `amount` from `from` to `to` using the caller's allowance.
    function transferFrom(address from, address to, uint256 amount) external returns (bool) {
        uint256 allowed = allowance[from][msg.sender];
        if (allowed != type(uint256).max) {
            if (allowed < amount) revert InsufficientAllowance(from, msg.sender, allowed, amount);
            allowance[from][msg.sender] = allowed - amount;
        }
        _move(from, to, amount);
        return true;
    }

    function _move(address from, address to, uint256 amount) private {
        if (to == address(0)) revert ZeroAddress();
        uint256 held = balanceOf[from];
        if (held < amount) revert InsufficientTokenBalance(from, held, amount);
        unchecked {
            balanceOf[from] = held - amount;
        }
        balanceOf[to] += amount;
        emit Transfer(from, to, amount);
    }
}
