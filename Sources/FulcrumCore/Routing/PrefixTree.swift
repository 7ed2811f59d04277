/// A compressed byte trie over route paths. Each stored key (an exact path or a prefix) ends on a
/// node, so one walk down the tree finds the exact candidates and every matching prefix; lookup
/// cost depends on the path's length, not on the number of routes. Nodes keep a parent link so the
/// matching prefixes can be visited longest first without collecting them.
struct PrefixTree: Sendable {
    struct TreeNode: Sendable {
        var label: [UInt8]
        var parent: Int
        /// Children sorted by the first byte of their label.
        var children: [Int] = []
        var childFirstBytes: [UInt8] = []
        /// Route indices (declaration order) whose exact path ends here.
        var exactRoutes: [Int] = []
        /// Route indices (declaration order) whose prefix ends here.
        var prefixRoutes: [Int] = []
    }

    private(set) var nodes: [TreeNode] = [TreeNode(label: [], parent: -1)]

    mutating func insert(_ key: String, route: Int, exact: Bool) {
        let bytes = Array(key.utf8)
        var current = 0
        var position = 0
        while position < bytes.count {
            let byte = bytes[position]
            guard let slot = nodes[current].childFirstBytes.firstIndex(of: byte) else {
                let child = appendNode(TreeNode(label: Array(bytes[position...]), parent: current), under: current)
                current = child
                position = bytes.count
                break
            }
            let child = nodes[current].children[slot]
            let label = nodes[child].label
            var common = 0
            while common < label.count, position + common < bytes.count, label[common] == bytes[position + common] {
                common += 1
            }
            current = common < label.count ? split(child, at: common) : child
            position += common
        }
        if exact { nodes[current].exactRoutes.append(route) } else { nodes[current].prefixRoutes.append(route) }
    }

    /// Walks `path` down the tree. Returns the deepest node whose whole key is a prefix of `path`
    /// and whether that key is the entire path (exact match).
    func deepestMatch(_ path: Substring.UTF8View) -> (node: Int, isExact: Bool) {
        var current = 0
        var index = path.startIndex
        while index != path.endIndex {
            guard let slot = nodes[current].childFirstBytes.firstIndex(of: path[index]) else { break }
            let child = nodes[current].children[slot]
            var cursor = index
            for byte in nodes[child].label {
                guard cursor != path.endIndex, path[cursor] == byte else { return (current, false) }
                cursor = path.index(after: cursor)
            }
            current = child
            index = cursor
        }
        return (current, index == path.endIndex)
    }

    private mutating func appendNode(_ node: TreeNode, under parent: Int) -> Int {
        nodes.append(node)
        let index = nodes.count - 1
        let first = node.label[0]
        let slot = nodes[parent].childFirstBytes.firstIndex { $0 > first } ?? nodes[parent].childFirstBytes.count
        nodes[parent].childFirstBytes.insert(first, at: slot)
        nodes[parent].children.insert(index, at: slot)
        return index
    }

    /// Splits `node` so that its first `length` label bytes become a new intermediate parent,
    /// and returns that parent.
    private mutating func split(_ node: Int, at length: Int) -> Int {
        let parent = nodes[node].parent
        let label = nodes[node].label
        let middle = nodes.count
        nodes.append(TreeNode(label: Array(label[..<length]), parent: parent, children: [node], childFirstBytes: [label[length]]))
        if let slot = nodes[parent].children.firstIndex(of: node) {
            nodes[parent].children[slot] = middle
        }
        nodes[node].label = Array(label[length...])
        nodes[node].parent = middle
        return middle
    }
}
