import ArgumentParser
import Aggregator

@main
enum AggregatorMain {
    static func main() async {
        await AggregatorCommand.main()
    }
}
