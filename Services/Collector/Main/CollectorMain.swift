import ArgumentParser
import Collector

@main
enum CollectorMain {
    static func main() async {
        await CollectorCommand.main()
    }
}
