import Foundation

/// Writes a line to standard output unbuffered, so a banner shows up at once even when stdout is a file or a pipe.
func say(_ text: String = "") {
    FileHandle.standardOutput.write(Data((text + "\n").utf8))
}
