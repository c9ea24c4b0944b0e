import ArgumentParser
import Forwarder

@main
enum ForwarderMain {
    static func main() async {
        await ForwarderCommand.main()
    }
}
