import Stages

PairMiningCommand.main()
