// Test support: writes to a journal until it is killed, so that tests can kill -9 a real writer
// in the middle of a transaction (or of a snapshot install) and prove that the journal recovers.
//
//   baton-journal-writer <directory> <seed> [full|normal]
//
// Resumes from whatever the journal holds, then submits `SyntheticRaftWorkload(seed:)` writes
// (ids from 1) through a `GroupCommitWriter`, at most 64 unacknowledged at a time. Prints
// "ready" once the journal is open, then "ack <id>" for every acknowledged write id, each line
// written straight to the file descriptor so that a SIGKILL cannot lose a printed acknowledgement.

import BatonJournal
import Dispatch
import Foundation
import RaftCore

func emit(_ line: String) {
    // FileHandle writes with write(2), unbuffered: what the test reads is exactly what was acknowledged.
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data(("baton-journal-writer: " + message + "\n").utf8))
    exit(1)
}

let arguments = CommandLine.arguments
guard arguments.count >= 3, let seed = UInt64(arguments[2]) else {
    fail("usage: baton-journal-writer <directory> <seed> [full|normal]")
}
let durability = arguments.count > 3 ? JournalOptions.Durability(rawValue: arguments[3]) : .full
guard let durability else { fail("durability must be 'full' or 'normal', not '\(arguments[3])'") }

let journal: RaftJournal
let recovered: RecoveredJournal
do {
    journal = try RaftJournal(directory: arguments[1], options: JournalOptions(durability: durability))
    recovered = try journal.load()
} catch {
    fail("cannot open the journal: \(error)")
}

let writer = GroupCommitWriter(journal: journal)
let window = DispatchSemaphore(value: 64)
let producer = Thread { [recovered] in
    var workload = SyntheticRaftWorkload(seed: seed, resumingFrom: recovered.state)
    while true {
        window.wait()
        do {
            try writer.submit(workload.next())
        } catch {
            fail("submit failed: \(error)")
        }
    }
}
emit("ready")
producer.start()

var acknowledged: UInt64 = 0
do {
    for try await id in writer.acknowledgements {
        emit("ack \(id.rawValue)")
        for _ in acknowledged..<id.rawValue { window.signal() }
        acknowledged = id.rawValue
    }
} catch {
    fail("write failed: \(error)")
}
