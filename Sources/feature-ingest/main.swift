import Stages

FeatureIngestCommand.main()
