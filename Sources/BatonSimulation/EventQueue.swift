/// The simulated world's timeline: a binary heap of events ordered by time, then by the order
/// they were scheduled in, so equal times replay identically.
struct EventQueue<Event> {
    private struct Scheduled {
        var time: UInt64
        var sequence: UInt64
        var event: Event
    }

    private var heap: [Scheduled] = []
    private var sequence: UInt64 = 0

    var isEmpty: Bool { heap.isEmpty }

    mutating func schedule(at time: UInt64, _ event: Event) {
        sequence += 1
        heap.append(Scheduled(time: time, sequence: sequence, event: event))
        var child = heap.count - 1
        while child > 0 {
            let parent = (child - 1) / 2
            guard isEarlier(heap[child], heap[parent]) else { break }
            heap.swapAt(child, parent)
            child = parent
        }
    }

    mutating func pop() -> (time: UInt64, event: Event)? {
        guard !heap.isEmpty else { return nil }
        let top = heap[0]
        let last = heap.removeLast()
        if !heap.isEmpty {
            heap[0] = last
            var parent = 0
            while true {
                let left = 2 * parent + 1
                let right = left + 1
                var smallest = parent
                if left < heap.count, isEarlier(heap[left], heap[smallest]) { smallest = left }
                if right < heap.count, isEarlier(heap[right], heap[smallest]) { smallest = right }
                if smallest == parent { break }
                heap.swapAt(parent, smallest)
                parent = smallest
            }
        }
        return (top.time, top.event)
    }

    private func isEarlier(_ a: Scheduled, _ b: Scheduled) -> Bool {
        a.time != b.time ? a.time < b.time : a.sequence < b.sequence
    }
}
