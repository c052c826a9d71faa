// SPDX-License-Identifier: Apache-2.0
pragma solidity ^0.8.24;

import {IMarketplace} from "./interfaces/IMarketplace.sol";

/// @title Marketplace — provider registry for paid (x402) services
/// @notice Anyone registers a service and becomes its owner; only the owner updates it, switches it on or off, or
/// hands it to someone else. Readers page through active services in id order, overall or by capability tag.
/// @dev Tag index: for every tag, a list of the ids that ever carried it, kept sorted by id and holding each id once
/// (an id is inserted in place the first time it gets the tag, and never removed). Whether an id carries the tag
/// now is a separate flag, flipped on update, so dropping and re-adding a tag costs no array shifting. Readers
/// filter each list by "carries the tag now and is active", so the views walk the whole list: O(ids that ever
/// carried the tag) for `servicesByTag`, O(serviceCount) for `activeServices` — fine for `eth_call`, not meant
/// to be called from other contracts on a large registry.
contract Marketplace is IMarketplace {
    uint256 public constant MAX_TAGS = 8;
    uint256 public constant MAX_TAG_BYTES = 32;
    uint256 public constant MAX_NAME_BYTES = 64;
    uint256 public constant MAX_ENDPOINT_BYTES = 2048;
    /// Page sizes above this are cut to it.
    uint256 public constant MAX_PAGE = 100;

    Service[] private _services; // _services[id - 1]
    uint256 private _active;

    /// tag hash => ids that ever carried the tag, ascending
    mapping(bytes32 => uint256[]) private _tagIds;
    /// tag hash => id => the id is in _tagIds[tag]
    mapping(bytes32 => mapping(uint256 => bool)) private _tagListed;
    /// tag hash => id => the service carries the tag now
    mapping(bytes32 => mapping(uint256 => bool)) private _hasTag;

    mapping(address => uint256[]) private _owned;
    /// id => its position in _owned[owner]
    mapping(uint256 => uint256) private _ownedAt;

    // ---------------------------------------------------------------- writes

    /// @notice List a service; the caller owns it. It starts active.
    function register(ServiceInput calldata s) external returns (uint256 id) {
        _check(s);
        id = _services.length + 1;
        Service storage svc = _services.push();
        svc.id = id;
        svc.owner = msg.sender;
        svc.active = true;
        svc.createdAt = uint64(block.timestamp);
        _write(svc, s);
        _active += 1;
        _ownedAt[id] = _owned[msg.sender].length;
        _owned[msg.sender].push(id);
        emit ServiceRegistered(id, msg.sender, s.payTo, s.name, s.endpoint, s.tags, s.price, s.metadataURI);
    }

    /// @notice Replace every provider-supplied field of the service; tags removed leave their lists, tags added join.
    function update(uint256 id, ServiceInput calldata s) external {
        Service storage svc = _mine(id);
        _check(s);
        uint256 n = svc.tags.length;
        for (uint256 i = 0; i < n; ++i) {
            _hasTag[keccak256(bytes(svc.tags[i]))][id] = false;
        }
        delete svc.tags;
        _write(svc, s);
        emit ServiceUpdated(id, svc.owner, s.payTo, s.name, s.endpoint, s.tags, s.price, s.metadataURI);
    }

    /// @notice Switch the service on or off (an inactive service is hidden from the paged views).
    function setActive(uint256 id, bool active) public {
        Service storage svc = _mine(id);
        if (svc.active != active) {
            svc.active = active;
            if (active) _active += 1;
            else _active -= 1;
        }
        svc.updatedAt = uint64(block.timestamp);
        emit ServiceActiveSet(id, active);
    }

    /// @notice Same as `setActive(id, false)`.
    function deactivate(uint256 id) external {
        setActive(id, false);
    }

    /// @notice Hand the service to `newOwner`, who alone may change it from now on.
    function transferServiceOwnership(uint256 id, address newOwner) external {
        Service storage svc = _mine(id);
        if (newOwner == address(0)) revert ZeroOwner();
        address previous = svc.owner;
        uint256[] storage from = _owned[previous];
        uint256 pos = _ownedAt[id];
        uint256 last = from[from.length - 1];
        from[pos] = last;
        _ownedAt[last] = pos;
        from.pop();
        _ownedAt[id] = _owned[newOwner].length;
        _owned[newOwner].push(id);
        svc.owner = newOwner;
        svc.updatedAt = uint64(block.timestamp);
        emit ServiceOwnershipTransferred(id, previous, newOwner);
    }

    // ---------------------------------------------------------------- views

    /// @notice The service with this id (active or not).
    function service(uint256 id) external view returns (Service memory) {
        return _stored(id);
    }

    /// @notice How many services were ever registered (ids run 1..serviceCount()).
    function serviceCount() external view returns (uint256) {
        return _services.length;
    }

    /// @notice How many services are active.
    function activeCount() external view returns (uint256) {
        return _active;
    }

    /// @notice Active services carrying `tag` (exact bytes), in id order: `limit` of them (at most MAX_PAGE)
    /// after skipping `offset`, and how many there are in all.
    function servicesByTag(string calldata tag, uint256 offset, uint256 limit)
        external
        view
        returns (Service[] memory page, uint256 totalActive)
    {
        bytes32 key = keccak256(bytes(tag));
        uint256[] storage ids = _tagIds[key];
        uint256 n = ids.length;
        uint256[] memory picked = new uint256[](limit > MAX_PAGE ? MAX_PAGE : limit);
        uint256 taken;
        for (uint256 i = 0; i < n; ++i) {
            uint256 id = ids[i];
            if (!_hasTag[key][id] || !_services[id - 1].active) continue;
            if (totalActive >= offset && taken < picked.length) picked[taken++] = id;
            totalActive += 1;
        }
        page = _page(picked, taken);
    }

    /// @notice Active services in id order: `limit` of them (at most MAX_PAGE) after skipping `offset`, and how
    /// many are active in all.
    function activeServices(uint256 offset, uint256 limit)
        external
        view
        returns (Service[] memory page, uint256 totalActive)
    {
        uint256[] memory picked = new uint256[](limit > MAX_PAGE ? MAX_PAGE : limit);
        uint256 taken;
        uint256 seen;
        uint256 n = _services.length;
        for (uint256 i = 0; i < n && taken < picked.length; ++i) {
            if (!_services[i].active) continue;
            if (seen >= offset) picked[taken++] = i + 1;
            seen += 1;
        }
        page = _page(picked, taken);
        totalActive = _active;
    }

    /// @notice The ids `owner` owns (registration order, except that a transfer away moves the last id into the
    /// freed place).
    function servicesOf(address owner) external view returns (uint256[] memory ids) {
        return _owned[owner];
    }

    // ---------------------------------------------------------------- internals

    function _stored(uint256 id) private view returns (Service storage) {
        if (id == 0 || id > _services.length) revert UnknownService(id);
        return _services[id - 1];
    }

    function _mine(uint256 id) private view returns (Service storage svc) {
        svc = _stored(id);
        if (svc.owner != msg.sender) revert NotServiceOwner(id, msg.sender);
    }

    function _page(uint256[] memory picked, uint256 taken) private view returns (Service[] memory page) {
        page = new Service[](taken);
        for (uint256 i = 0; i < taken; ++i) {
            page[i] = _services[picked[i] - 1];
        }
    }

    /// Every refusal of a provider's input, in field order.
    function _check(ServiceInput calldata s) private pure {
        uint256 nameLength = bytes(s.name).length;
        if (nameLength == 0) revert EmptyName();
        if (nameLength > MAX_NAME_BYTES) revert NameTooLong(nameLength, MAX_NAME_BYTES);
        bytes calldata endpoint = bytes(s.endpoint);
        if (endpoint.length == 0) revert EmptyEndpoint();
        if (!_hasPrefix(endpoint, "https://") && !_hasPrefix(endpoint, "http://")) revert EndpointNotHttp();
        if (endpoint.length > MAX_ENDPOINT_BYTES) revert EndpointTooLong(endpoint.length, MAX_ENDPOINT_BYTES);
        uint256 count = s.tags.length;
        if (count == 0) revert NoTags();
        if (count > MAX_TAGS) revert TooManyTags(count, MAX_TAGS);
        for (uint256 i = 0; i < count; ++i) {
            uint256 length = bytes(s.tags[i]).length;
            if (length == 0 || length > MAX_TAG_BYTES) revert InvalidTagLength(i);
            bytes32 hash = keccak256(bytes(s.tags[i]));
            for (uint256 j = 0; j < i; ++j) {
                if (keccak256(bytes(s.tags[j])) == hash) revert DuplicateTag(i);
            }
        }
        if (s.price == 0) revert ZeroPrice();
        if (s.payTo == address(0)) revert ZeroPayTo();
    }

    /// True when `data` is `prefix` followed by at least one more byte.
    function _hasPrefix(bytes calldata data, bytes memory prefix) private pure returns (bool) {
        if (data.length <= prefix.length) return false;
        return keccak256(data[:prefix.length]) == keccak256(prefix);
    }

    /// Store the provider-supplied fields (svc.tags must be empty) and index the tags.
    function _write(Service storage svc, ServiceInput calldata s) private {
        uint256 id = svc.id;
        svc.name = s.name;
        svc.endpoint = s.endpoint;
        svc.price = s.price;
        svc.payTo = s.payTo;
        svc.metadataURI = s.metadataURI;
        svc.updatedAt = uint64(block.timestamp);
        uint256 count = s.tags.length;
        for (uint256 i = 0; i < count; ++i) {
            svc.tags.push(s.tags[i]);
            bytes32 key = keccak256(bytes(s.tags[i]));
            _hasTag[key][id] = true;
            if (!_tagListed[key][id]) {
                _tagListed[key][id] = true;
                _insertSorted(_tagIds[key], id);
            }
        }
    }

    /// Insert `id` into the ascending `list` (new ids arrive last, so this is usually a plain push).
    function _insertSorted(uint256[] storage list, uint256 id) private {
        uint256 pos = list.length;
        list.push(id);
        while (pos > 0 && list[pos - 1] > id) {
            list[pos] = list[pos - 1];
            pos -= 1;
        }
        list[pos] = id;
    }
}
