/// Runs `body` for every element with at most `limit` running at once; results keep the input order.
public func concurrentMap<Element: Sendable, Result: Sendable>(
    _ elements: [Element], limit: Int, _ body: @escaping @Sendable (Element) async -> Result
) async -> [Result] {
    let width = max(1, limit)
    return await withTaskGroup(of: (Int, Result).self) { group in
        var results = [Result?](repeating: nil, count: elements.count)
        var next = 0
        while next < min(width, elements.count) {
            let index = next, element = elements[index]
            group.addTask { (index, await body(element)) }
            next += 1
        }
        while let (index, result) = await group.next() {
            results[index] = result
            if next < elements.count {
                let index = next, element = elements[index]
                group.addTask { (index, await body(element)) }
                next += 1
            }
        }
        return results.map { $0! }
    }
}
