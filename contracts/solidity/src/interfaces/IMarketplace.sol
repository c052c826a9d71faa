// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

/// @title IMarketplace — an on-chain directory of paid (x402) services
/// @notice Providers list services (an HTTP(S) endpoint, capability tags, a per-call USDC price and the address
/// paid); buyers and indexers page through the active ones, overall or by tag.
interface IMarketplace {
    /// What a provider supplies when it registers or updates a service.
    struct ServiceInput {
        string name;
        /// Must start with "https://" or "http://" and carry something after the scheme.
        string endpoint;
        /// 1..8 tags, each 1..32 bytes, no duplicates; matched byte for byte (case-sensitive).
        string[] tags;
        /// Atomic USDC (6 decimals) per call, > 0.
        uint256 price;
        /// Where payments go (the x402 `payTo`), non-zero.
        address payTo;
        /// Optional pointer to more metadata (e.g. an ERC-8004 registration file).
        string metadataURI;
    }

    /// A listed service as stored.
    struct Service {
        uint256 id;
        address owner;
        string name;
        string endpoint;
        string[] tags;
        uint256 price;
        address payTo;
        string metadataURI;
        bool active;
        uint64 createdAt;
        uint64 updatedAt;
    }

    event ServiceRegistered(
        uint256 indexed id,
        address indexed owner,
        address indexed payTo,
        string name,
        string endpoint,
        string[] tags,
        uint256 price,
        string metadataURI
    );
    event ServiceUpdated(
        uint256 indexed id,
        address indexed owner,
        address indexed payTo,
        string name,
        string endpoint,
        string[] tags,
        uint256 price,
        string metadataURI
    );
    event ServiceActiveSet(uint256 indexed id, bool active);
    event ServiceOwnershipTransferred(uint256 indexed id, address indexed previousOwner, address indexed newOwner);

    /// The name is empty.
    error EmptyName();
    /// The name is longer than `max` bytes.
    error NameTooLong(uint256 length, uint256 max);
    /// The endpoint is empty.
    error EmptyEndpoint();
    /// The endpoint does not start with "https://" or "http://" followed by at least one byte.
    error EndpointNotHttp();
    /// The endpoint is longer than `max` bytes.
    error EndpointTooLong(uint256 length, uint256 max);
    /// No capability tag was given.
    error NoTags();
    /// More than `max` tags were given.
    error TooManyTags(uint256 count, uint256 max);
    /// Tag number `index` is empty or longer than 32 bytes.
    error InvalidTagLength(uint256 index);
    /// Tag number `index` repeats an earlier tag.
    error DuplicateTag(uint256 index);
    /// The price is zero.
    error ZeroPrice();
    /// payTo is the zero address.
    error ZeroPayTo();
    /// No service has this id.
    error UnknownService(uint256 id);
    /// The caller does not own the service.
    error NotServiceOwner(uint256 id, address caller);
    /// Ownership cannot go to the zero address.
    error ZeroOwner();

    function register(ServiceInput calldata s) external returns (uint256 id);
    function update(uint256 id, ServiceInput calldata s) external;
    function setActive(uint256 id, bool active) external;
    function deactivate(uint256 id) external;
    function transferServiceOwnership(uint256 id, address newOwner) external;

    function service(uint256 id) external view returns (Service memory);
    function serviceCount() external view returns (uint256);
    function activeCount() external view returns (uint256);
    function servicesByTag(string calldata tag, uint256 offset, uint256 limit)
        external
        view
        returns (Service[] memory page, uint256 totalActive);
    function activeServices(uint256 offset, uint256 limit)
        external
        view
        returns (Service[] memory page, uint256 totalActive);
    function servicesOf(address owner) external view returns (uint256[] memory ids);
}
