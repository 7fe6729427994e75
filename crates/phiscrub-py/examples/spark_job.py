"""The spark-submit entry point of phiscrub.spark (spark-submit runs a file, not a module):

    spark-submit --master yarn --conf spark.task.cpus=2 \\
      --archives phiscrub-venv.tar.gz#venv --conf spark.pyspark.python=./venv/bin/python \\
      spark_job.py s3a://ward/photos s3a://ward/scrubbed --manifest s3a://ward/manifest

The driver's Python and every executor's need phiscrub and pyarrow installed: here from a
venv packed with venv-pack and shipped with --archives.
"""

import sys

from phiscrub.spark import main

if __name__ == "__main__":
    sys.exit(main())
