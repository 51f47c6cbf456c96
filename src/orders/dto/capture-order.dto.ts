import { ApiPropertyOptional } from '@nestjs/swagger';
import { IsInt, IsOptional, Max, Min } from 'class-validator';

export class CaptureOrderDto {
  /** Minor units; default: all that is capturable. The rest of the authorization is released. */
  @ApiPropertyOptional({ example: 3000, description: 'Minor units; default: all that is capturable. The rest is released to the customer' })
  @IsOptional()
  @IsInt({ message: 'amount must be a whole number of minor units' })
  @Min(1)
  @Max(99_999_999)
  amount?: number;
}
